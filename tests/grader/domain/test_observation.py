"""Pytest's summary line, read and written the way pytest prints it (pure functions)."""

from __future__ import annotations

import pytest

from grader.domain.observation import format_summary, parse_summary


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("1 passed", {"passed": 1}),
        ("1 skipped, 1 warning", {"skipped": 1, "warnings": 1}),
        (
            "2 failed, 4 passed, 3 warnings, 2 errors",
            {"failed": 2, "passed": 4, "warnings": 3, "error": 2},
        ),
        ("1 error", {"error": 1}),
        ("1 xpassed, 1 failed", {"xpassed": 1, "failed": 1}),
        ("0 passed, 1 xfailed", {"xfailed": 1}),
        ("no tests ran", {}),
    ],
)
def test_summary_lines_parse_to_counts(text: str, counts: dict[str, int]) -> None:
    """Singular and plural words, any order, zeros dropped, 'no tests ran' is empty."""
    assert parse_summary(text) == counts


@pytest.mark.parametrize(
    "text",
    ["", "passed", "1 passed 1 failed", "1 passed, 1 passed", "1 ok", "-1 passed", "1 Passed"],
)
def test_what_is_not_a_summary_line(text: str) -> None:
    """Anything but comma-separated '<count> <outcome>' parts is refused with the text."""
    with pytest.raises(ValueError, match="is not a pytest summary line"):
        parse_summary(text)


def test_counts_print_in_pytests_order_and_plurals() -> None:
    """pytest's order (a plugin's categories last), 'warning' and 'error' pluralised."""
    counts = {
        "error": 2,
        "warnings": 1,
        "passed": 3,
        "xpassed": 1,
        "failed": 1,
        "subtests passed": 2,
    }
    assert format_summary(counts) == (
        "1 failed, 3 passed, 1 xpassed, 1 warning, 2 errors, 2 subtests passed"
    )
    assert format_summary({"error": 1, "warnings": 2}) == "2 warnings, 1 error"
    assert format_summary({"passed": 0}) == "no tests ran"
