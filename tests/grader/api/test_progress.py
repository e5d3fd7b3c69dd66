"""Where a learner stands at a challenge, from their session (``progress_of``, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from grader.adapters.sessions import Result, Session
from grader.api.learners import progress_of
from grader.domain.loader import load_challenge

from ..domain.test_feedback import SEED


def test_progress_states_follow_the_session() -> None:
    """time_up past the deadline, grading while the last attempt runs, failed once it is
    graded wrong, passed_late for a late pass that does not score."""
    q5 = load_challenge(SEED / "q5-test-isolation.yaml")
    opened = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    wrong = Result("failed", 0.0, True)
    cases = [
        (Session(opened, 1, {"a": wrong}), opened + timedelta(seconds=121), "time_up"),
        (Session(opened, 2, {"a": wrong}), opened, "grading"),
        (Session(opened, 2, {"a": wrong, "b": wrong}), opened, "failed"),
        (Session(opened, 1, {"a": Result("passed", 0.0, False)}), opened, "passed_late"),
        (Session(opened, 1, {"a": Result("passed", 1.0, True)}), opened, "passed"),
    ]
    for session, at, state in cases:
        assert progress_of(q5, session, at).state.value == state
    late = progress_of(q5, cases[0][0], cases[0][1])
    assert (late.seconds_left, late.attempts_left, late.hint is not None) == (0.0, 1, True)
