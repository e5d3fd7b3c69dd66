"""What a submitter may see of a result, and when: the seed quiz's rules.

A submission is admitted under ``Terms`` (its attempt, its deadline, what its challenge says
about feedback), stamped on the record so every route that shows it (GET, batch, webhooks,
exporters) applies the same rules without reading the challenge again:

- the hint after a wrong attempt;
- the explanation and the correct answer after a pass or the last attempt, never before;
- while attempts remain, a wrong answer's reason, diff and per-test messages say what was
  wrong without the expected value (unless the challenge sets ``show_expected``);
- a late answer is graded and marked ``late``; it scores 0 unless late answers score.

The stored verdict is whole (instructors and the gradebook read it); these functions shape a
copy. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from .challenge import Challenge, Kind
from .sets import Badge, ChallengeSet
from .verdict import SubtestVerdict, TestVerdict, Verdict, VerdictStatus


class Terms(BaseModel):
    """What a submission was admitted under (``attempt`` is None without a ``learner_id``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    attempt: int | None = None
    attempts_allowed: int | None = None
    opened_at: datetime | None = None
    deadline: datetime | None = None
    late: bool = False
    late_scores: bool = False
    show_expected: bool = False
    hint: str = ""
    explanation: str = ""
    answer: str | None = None
    set_members: tuple[str, ...] = ()
    badge: Badge | None = None

    @property
    def attempts_left(self) -> int | None:
        """Attempts left after this one; None when unlimited or without a learner."""
        if self.attempts_allowed is None or self.attempt is None:
            return None
        return max(0, self.attempts_allowed - self.attempt)

    @property
    def last_attempt(self) -> bool:
        return self.attempts_left == 0


def terms_for(
    challenge: Challenge,
    challenge_set: ChallengeSet | None,
    *,
    environment: str,
    members: tuple[str, ...],
    attempt: int | None = None,
    opened_at: datetime | None = None,
    at: datetime | None = None,
) -> Terms:
    """The terms of an answer to ``challenge`` given ``at`` by a learner whose session opened
    at ``opened_at`` (both None without a learner)."""
    deadline = None
    if opened_at is not None and challenge.time_limit is not None:
        deadline = opened_at + timedelta(seconds=challenge.time_limit)
    late_scores = challenge.late_scores
    if late_scores is None:
        late_scores = challenge_set.late_scores if challenge_set is not None else False
    return Terms(
        kind=challenge.kind_in(environment),
        attempt=attempt,
        attempts_allowed=challenge.attempts,
        opened_at=opened_at,
        deadline=deadline,
        late=deadline is not None and at is not None and at > deadline,
        late_scores=late_scores,
        show_expected=challenge.show_expected,
        hint=challenge.hint,
        explanation=challenge.explanation.strip(),
        answer=answer_text(challenge),
        set_members=members,
        badge=challenge_set.badge if challenge_set is not None else None,
    )


def answer_text(challenge: Challenge) -> str | None:
    """The keyed option as a learner reads it: ``C: 3`` (a code option by its label)."""
    if challenge.answer is None:
        return None
    option = challenge.option(challenge.answer)
    return f"{option.label}: {option.text}" if option.text is not None else option.label


def scores(terms: Terms) -> bool:
    """Whether this answer counts for the grade (on time, or late where late answers score)."""
    return not terms.late or terms.late_scores


def reveals_solution(verdict: Verdict | None, terms: Terms) -> bool:
    """The explanation and the answer: after a pass or a graded last attempt."""
    return verdict is not None and (verdict.passed or terms.last_attempt)


def redacts(verdict: Verdict, terms: Terms) -> bool:
    """Whether expected values are kept out of this result: a wrong answer while attempts
    remain (always, without a learner: nothing bounds its attempts)."""
    limited = terms.attempts_allowed is not None
    return limited and not terms.show_expected and not verdict.passed and not terms.last_attempt


def shown(verdict: Verdict, terms: Terms, *, full: bool) -> Verdict:
    """The verdict as its reader sees it: scored by the late rule; redacted unless ``full``."""
    if not scores(terms) and verdict.score > 0:
        verdict = verdict.model_copy(
            update={"score": 0.0, "points": 0.0, "reason": f"{verdict.reason} (late: not scored)"}
        )
    if full or not redacts(verdict, terms):
        return verdict
    return redact(verdict, terms)


def standing(terms: Terms | None) -> dict[str, Any]:
    """``attempts_used``, ``attempts_left``, ``late`` and ``deadline``, as every result has."""
    if terms is None:
        return {"attempts_used": None, "attempts_left": None, "late": False, "deadline": None}
    return {
        "attempts_used": terms.attempt,
        "attempts_left": terms.attempts_left,
        "late": terms.late,
        "deadline": terms.deadline.isoformat() if terms.deadline else None,
    }


def block(verdict: Verdict | None, terms: Terms | None, *, full: bool) -> dict[str, Any]:
    """The ``feedback`` of a result: the hint after a wrong attempt, the explanation and the
    answer after a pass or the last attempt (all of them for instructors)."""
    if terms is None:
        return {"hint": None, "explanation": None, "answer": None}
    graded = verdict is not None and verdict.status not in _NOT_AN_ATTEMPT
    wrong = graded and verdict is not None and not verdict.passed
    solution = full or (graded and reveals_solution(verdict, terms))
    return {
        "hint": (terms.hint or None) if (full or wrong) else None,
        "explanation": (terms.explanation or None) if solution else None,
        "answer": terms.answer if solution else None,
    }


_NOT_AN_ATTEMPT = frozenset({VerdictStatus.SANDBOX_ERROR})

_WRONG = {
    Kind.OUTPUT: "the output is not the expected output",
    Kind.EXCEPTION: "the run did not end with the expected exception",
    Kind.SYNTAX: "the code does not fail to compile the expected way",
    Kind.OUTCOME: "what pytest reports is not what the challenge expects",
}
_EXCEPTION_TYPE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Warning|Interrupt))\b")


def redact(verdict: Verdict, terms: Terms) -> Verdict:
    """``verdict`` without expected values: a reason that says what was wrong, no diff,
    per-test messages cut to their exception type, no hidden tests' output."""
    reason = verdict.reason
    if verdict.observation is not None and verdict.status is VerdictStatus.FAILED:
        reason = _wrong_reason(verdict, terms.kind)
    observation = verdict.observation
    if observation is not None and terms.kind is Kind.TESTS:
        observation = observation.model_copy(
            update={
                "tests": tuple(
                    t.model_copy(
                        update={
                            "message": _cut(t.message),
                            "stdout": "",
                            "stderr": "",
                            "exception": None,
                            "subtests": (),
                        }
                    )
                    for t in observation.tests
                ),
            }
        )
    left = terms.attempts_left
    if left:
        reason = f"{reason} ({left} attempt{'s' if left != 1 else ''} left)"
    return verdict.model_copy(
        update={
            "reason": reason,
            "diff": None,
            "tests": tuple(_cut_test(t) for t in verdict.tests),
            "observation": observation,
        }
    )


def _wrong_reason(verdict: Verdict, kind: Kind) -> str:
    observation = verdict.observation
    if kind is Kind.STATE and observation is not None:
        wrong = [
            f"{name} is {json.dumps(value.value)}" if value.value is not None else name
            for name, value in observation.state.items()
            if f"{name} is " in verdict.reason
        ]
        if wrong:
            return f"{', '.join(wrong)}: not the expected value"
        return "the values after the run are not the expected ones"
    if kind is Kind.TESTS or kind is Kind.CONCEPTUAL:
        return verdict.reason  # names of the tests that failed; a choice's "is not the answer"
    return _WRONG.get(kind, "the answer is not correct")


def _cut(message: str | None) -> str | None:
    if message is None:
        return None
    found = _EXCEPTION_TYPE.match(message.strip())
    return found.group(1) if found else "did not pass"


def _cut_test(test: TestVerdict) -> TestVerdict:
    return test.model_copy(
        update={
            "message": _cut(test.message),
            "output": "",
            "subtests": tuple(_cut_subtest(s) for s in test.subtests),
        }
    )


def _cut_subtest(subtest: SubtestVerdict) -> SubtestVerdict:
    return subtest.model_copy(update={"message": _cut(subtest.message), "output": ""})
