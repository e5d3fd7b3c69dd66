"""``grader challenges push``'s own rules: which challenge a file is, how refusals read.

The whole command runs against a real service in ``tests/integration/test_bank_e2e.py``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from grader.cli.push import Outcome, _error_reasons, _target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title: t\n", "my-set/q1"),
        ("id: other\n", "my-set/other"),
        ("set: elsewhere\nid: x\n", "elsewhere/x"),
        ("id: [1\n", None),  # not YAML: the service says what is wrong, with the line
        ("- a list\n", None),
        ("id: 3\n", None),
        ("id: a/b\n", None),
    ],
)
def test_a_file_is_the_challenge_the_loader_would_name(text: str, expected: str | None) -> None:
    """The id and set come from the fields, else the file and folder names, as for the loader."""
    assert _target(Path("challenges/my-set/q1.yaml"), text) == expected


def test_a_refusal_lists_each_problem_with_its_line() -> None:
    """A 422 with problems reads as one line per problem: line, field, message."""
    response = httpx.Response(
        422,
        json={
            "error": {
                "code": "invalid",
                "message": "...",
                "problems": [
                    {"file": "s/a.yaml", "line": "3", "field": "kind", "message": "bad"},
                    {"file": "s/a.yaml", "line": "1", "field": "", "message": "worse"},
                ],
            }
        },
    )
    assert _error_reasons(response) == ["line 3: kind: bad", "line 1: worse"]
    other = httpx.Response(409, json={"error": {"code": "conflict", "message": "exists"}})
    assert _error_reasons(other) == ["HTTP 409 conflict: exists"]
    assert _error_reasons(httpx.Response(502, text="bad gateway")) == ["HTTP 502: bad gateway"]


def test_only_published_and_unchanged_files_succeed() -> None:
    """Any other outcome makes push exit 1."""
    assert [Outcome("f", s).failed for s in ("published", "unchanged")] == [False, False]
    assert all(Outcome("f", s).failed for s in ("rejected", "error", "validating"))
    line = Outcome("s/a.yaml", "rejected", "0123456789abcdef", ["line 3: kind: bad"]).line()
    assert line.plain == "✗ s/a.yaml: rejected (revision 0123456789abcdef)\n    line 3: kind: bad"
