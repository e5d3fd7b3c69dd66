"""The soak's accounting: each accepted submission is graded, wrong, lost or stuck, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.soak.accounting import (
    Fate,
    Planned,
    Tracked,
    duplicates,
    fate,
    summarize,
    verdicts_written_twice,
)
from bench.soak.mix import plan

ROOT = Path(__file__).resolve().parents[2]


def planned(key: str = "k1", expected: str = "passed", kind: str = "right") -> Planned:
    return Planned(key, kind, f"{kind}/x", "set/challenge", expected, code="x = 1\n")


def record(status: str, verdict: str | None = None) -> dict[str, Any]:
    return {
        "id": "s1",
        "status": status,
        "result": None if verdict is None else {"status": verdict},
    }


def tracked(
    final: dict[str, Any] | None, *, ids: tuple[str, ...] = ("s1",), expected: str = "passed"
) -> Tracked:
    return Tracked(planned(expected=expected), ids=set(ids), final=final)


@pytest.mark.parametrize(
    ("final", "expected", "outcome"),
    [
        (record("done", "passed"), "passed", Fate.GRADED),
        (record("done", "failed"), "failed", Fate.GRADED),
        (record("done", "time_limit_exceeded"), "time_limit_exceeded", Fate.GRADED),
        (record("done", "failed"), "passed", Fate.WRONG),
        (record("done", "passed"), "failed", Fate.WRONG),
        (record("failed", "sandbox_error"), "passed", Fate.WRONG),
        (record("done"), "passed", Fate.WRONG),
        (record("queued"), "passed", Fate.STUCK),
        (record("running"), "passed", Fate.STUCK),
        (None, "passed", Fate.LOST),
    ],
)
def test_fate_of_an_accepted_submission(
    final: dict[str, Any] | None, expected: str, outcome: Fate
) -> None:
    """Final with the expected verdict is graded, another verdict wrong, unfinished stuck."""
    assert fate(tracked(final, expected=expected)) is outcome


def test_a_404_after_acceptance_is_lost_even_with_an_earlier_record() -> None:
    """An accepted submission whose last read answered 404 is lost."""
    item = tracked(record("running"))
    item.missing = True
    assert fate(item) is Fate.LOST


def test_a_submission_never_accepted_has_no_fate() -> None:
    """No 2xx, no account: it is neither lost nor stuck."""
    assert fate(tracked(None, ids=())) is None


def test_duplicates_unite_answered_and_stored_ids() -> None:
    """Two ids for one idempotency key, from the answers or from the store, is a duplicate."""
    assert duplicates(tracked(None, ids=("a",))) == 0
    assert duplicates(tracked(None, ids=("a",)), ["a"]) == 0
    assert duplicates(tracked(None, ids=("a", "b"))) == 1
    assert duplicates(tracked(None, ids=("a",)), ["a", "b", "c"]) == 2


def test_verdicts_written_twice_compares_the_store_s_counters_with_final_records() -> None:
    """More verdict writes than final records means a verdict was stored twice."""
    stats = {"verdict:passed": "3", "verdict:failed": "2", "submitted": "9"}
    assert verdicts_written_twice(stats, 5) == 0
    assert verdicts_written_twice(stats, 4) == 1
    assert verdicts_written_twice({}, 0) == 0


def test_summary_counts_every_fate_once_and_fails_on_any_problem() -> None:
    """The figures add up: accepted = graded + wrong + lost + stuck; ok only when all are 0."""
    items = [
        tracked(record("done", "passed")),
        tracked(record("done", "failed")),
        tracked(record("queued")),
        tracked(None),
        tracked(None, ids=()),
    ]
    items[-1].refused = "422 bad"
    summary = summarize(items, {"k1": ["s1"]})
    assert summary.figures() == {
        "accepted": 4,
        "graded": 1,
        "lost": 1,
        "duplicated": 0,
        "wrongly graded": 1,
        "stuck": 1,
    }
    assert (summary.planned, summary.refused, summary.ok) == (5, 1, False)
    assert [p["fate"] for p in summary.problems] == ["wrong", "stuck", "lost"]
    assert summary.by_kind == {
        "right": {"planned": 5, "accepted": 4, "graded": 1, "wrong": 1, "stuck": 1, "lost": 1}
    }


def test_summary_of_a_clean_run_is_ok() -> None:
    """Every submission graded as expected, one id each, no extra writes: ok."""
    summary = summarize([tracked(record("done", "passed"))], {"k1": ["s1"]}, 0)
    assert summary.ok
    assert summary.problems == []


def test_duplicates_and_extra_verdicts_make_the_summary_fail() -> None:
    """A second record for one key, or a verdict written twice, counts as duplicated."""
    summary = summarize([tracked(record("done", "passed"))], {"k1": ["s1", "s2"]}, 1)
    assert (summary.duplicated, summary.extra_verdicts, summary.graded) == (2, 1, 1)
    assert not summary.ok
    assert summary.problems[0]["duplicates"] == 1


def test_the_mix_is_reproducible_and_covers_every_kind() -> None:
    """One seed, one mix: every kind is present and every key is unique."""
    first = plan(300, 7, ROOT / "challenges", run_id="t")
    again = plan(300, 7, ROOT / "challenges", run_id="t")
    assert [p.label for p in first] == [p.label for p in again]
    assert {p.kind for p in first} == {"right", "wrong", "time-limit", "memory-bomb", "hostile"}
    assert len({p.key for p in first}) == 300
    assert all(p.expected != "passed" for p in first if p.kind == "hostile")
