"""What a submitter may see of a result, and when (pure rules of ``grader.domain.feedback``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.domain.challenge import Kind
from grader.domain.feedback import Terms, block, redacts, shown, standing, terms_for
from grader.domain.loader import load_challenge, load_sets
from grader.domain.observation import StateStatus, StateValue
from grader.domain.verdict import Verdict, failing, passing

from . import exporter_cases as cases

SEED = Path(__file__).resolve().parents[3] / "challenges" / "async-test-mastery"
OPENED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def q4_terms(attempt: int | None, *, at: datetime = OPENED, **changes: object) -> Terms:
    challenge = load_challenge(SEED / "q4-counter-after-test.yaml")
    challenge = challenge.model_copy(update=changes)
    return terms_for(
        challenge,
        load_sets(SEED.parent).get("async-test-mastery"),
        environment=challenge.environment,
        members=("async-test-mastery/q4-counter-after-test",),
        attempt=attempt,
        opened_at=OPENED if attempt is not None else None,
        at=at,
    )


def state_failed() -> Verdict:
    observation = cases._obs(state={"counter": StateValue(status=StateStatus.OK, value=2)})
    return failing("counter is 2, expected 3", observation=observation)


def test_terms_carry_the_deadline_the_attempt_and_the_sets_badge() -> None:
    """Q4 opened at noon allows 120 s and 2 attempts; the seed set declares its badge."""
    terms = q4_terms(1)
    assert terms.deadline == OPENED + timedelta(seconds=120)
    assert (terms.attempt, terms.attempts_left, terms.late) == (1, 1, False)
    assert terms.answer == "C: 3"
    assert terms.badge is not None and terms.badge.name == "Async Test Mastery"
    assert standing(terms) == {
        "attempts_used": 1,
        "attempts_left": 1,
        "late": False,
        "deadline": "2026-12-01T12:02:00+00:00",
    }


def test_a_wrong_answer_while_attempts_remain_states_no_expected_value() -> None:
    """The reason names the learner's own value, never the expected one; attempts left."""
    seen = shown(state_failed(), q4_terms(1), full=False)
    assert seen.reason == "counter is 2: not the expected value (1 attempt left)"
    assert shown(state_failed(), q4_terms(1), full=True).reason == "counter is 2, expected 3"


def test_the_last_attempt_shows_the_whole_reason_and_the_solution() -> None:
    """After the last attempt nothing is left to protect: whole reason, explanation, answer."""
    terms = q4_terms(2)
    assert shown(state_failed(), terms, full=False).reason == "counter is 2, expected 3"
    feedback = block(state_failed(), terms, full=False)
    assert feedback["answer"] == "C: 3"
    assert feedback["explanation"] is not None and "three requests" in feedback["explanation"]
    assert feedback["hint"] == terms.hint


def test_the_hint_follows_a_wrong_attempt_and_the_explanation_a_pass() -> None:
    """Before any verdict nothing shows; a wrong one shows the hint only; a pass the rest."""
    terms = q4_terms(1)
    assert block(None, terms, full=False) == {"hint": None, "explanation": None, "answer": None}
    wrong = block(state_failed(), terms, full=False)
    assert (wrong["hint"], wrong["explanation"], wrong["answer"]) == (terms.hint, None, None)
    right = block(passing("every value matches"), terms, full=False)
    assert (right["hint"], right["answer"]) == (None, "C: 3")


def test_show_expected_and_unlimited_attempts_are_not_redacted() -> None:
    """A challenge may allow expected values; one without an attempt limit has nothing to
    protect by redaction (any answer can be tried anyway)."""
    assert redacts(state_failed(), q4_terms(1, show_expected=True)) is False
    assert redacts(state_failed(), q4_terms(1, attempts=None)) is False
    assert redacts(state_failed(), q4_terms(None)) is True  # no learner: attempts unknown


def test_output_diffs_and_hidden_test_messages_are_cut() -> None:
    """An output failure loses its diff; hidden tests keep their status and exception type
    but not their message or output."""
    output = cases.output_failed().verdict
    assert output is not None
    seen = shown(output, q4_terms(1, kind=Kind.OUTPUT), full=False)
    assert seen.diff is None
    tests = cases.tests_partly_failing().verdict
    assert tests is not None
    terms = q4_terms(1).model_copy(update={"kind": Kind.TESTS})
    cut = shown(tests, terms, full=False)
    assert [t.status for t in cut.tests] == [t.status for t in tests.tests]
    assert [t.message for t in tests.tests] == [None, "AssertionError: assert 404 == 204"]
    assert [t.message for t in cut.tests] == [None, "AssertionError"]
    assert [t.output for t in cut.tests] == ["", ""]
    assert cut.reason.startswith(tests.reason)


@pytest.mark.parametrize(("late_scores", "score"), [(False, 0.0), (True, 1.0)])
def test_a_late_answer_scores_only_where_late_answers_score(
    late_scores: bool, score: float
) -> None:
    """Past the deadline the answer is graded and marked late; by default it scores 0."""
    terms = q4_terms(1, at=OPENED + timedelta(seconds=121), late_scores=late_scores)
    assert terms.late is True
    seen = shown(passing("every value matches"), terms, full=False)
    assert (seen.status.value, seen.score) == ("passed", score)
