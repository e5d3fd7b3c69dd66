"""The gradebook: which submissions a query selects, one row per submission, and
per-challenge statistics. Pure: the store pages through submissions, these decide.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .compare import failing_exception
from .feedback import scores
from .submission import Submission
from .verdict import VerdictStatus

COLUMNS = (
    "id",
    "key_id",
    "learner_id",
    "set",
    "challenge_id",
    "status",
    "result",
    "score",
    "points",
    "max_points",
    "attempt",
    "attempts_left",
    "late",
    "badge",
    "exception",
    "reason",
    "created_at",
    "finished_at",
)
"""The row of every export, in order (the CSV header)."""


@dataclass(frozen=True)
class Query:
    """What ``GET /v1/submissions`` selects; every field set must match."""

    set: str | None = None
    challenge: str | None = None
    """A qualified id (``set/id``) or, with ``set``, the id within it."""
    learner_id: str | None = None
    status: str | None = None
    """The result's status once finished (``passed``, ``failed``, ...), else the lifecycle
    (``queued``, ``running``)."""

    def keeps(self, submission: Submission) -> bool:
        set_name, _, name = submission.challenge_id.partition("/")
        if self.set is not None and set_name != self.set:
            return False
        if self.challenge is not None and self.challenge not in (submission.challenge_id, name):
            return False
        if self.learner_id is not None and submission.learner_id != self.learner_id:
            return False
        return self.status is None or shown_status(submission) == self.status


def shown_status(submission: Submission) -> str:
    """The result's status once there is one, else the lifecycle's."""
    if submission.verdict is not None:
        return submission.verdict.status.value
    return submission.status.value


def exception_type(submission: Submission) -> str | None:
    """The exception (or compile error) the learner's run ended with, if any."""
    observation = submission.verdict.observation if submission.verdict else None
    if observation is None:
        return None
    if observation.syntax_error is not None:
        return observation.syntax_error.type
    found = failing_exception(observation)
    return found.type if found is not None else None


def row(submission: Submission) -> dict[str, Any]:
    """One submission as a gradebook row (``COLUMNS``), from the record as given (pass the
    submitter's shaped copy to keep expected values out)."""
    verdict, terms = submission.verdict, submission.terms
    return {
        "id": submission.id,
        "key_id": submission.key_id,
        "learner_id": submission.learner_id,
        "set": submission.challenge_id.partition("/")[0],
        "challenge_id": submission.challenge_id,
        "status": submission.status.value,
        "result": verdict.status.value if verdict else None,
        "score": verdict.score if verdict else None,
        "points": verdict.points if verdict else None,
        "max_points": verdict.max_points if verdict else None,
        "attempt": terms.attempt if terms else None,
        "attempts_left": terms.attempts_left if terms else None,
        "late": terms.late if terms else False,
        "badge": submission.badge.name if submission.badge else None,
        "exception": exception_type(submission),
        "reason": verdict.reason if verdict else None,
        "created_at": submission.created_at.isoformat(),
        "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
    }


def statistics(submissions: list[Submission]) -> list[dict[str, Any]]:
    """Per challenge: submissions, graded, passed, pass rate, learners and how many passed,
    attempts to pass (each learner's first scoring pass), most common exception types."""
    by_challenge: dict[str, list[Submission]] = {}
    for submission in submissions:
        by_challenge.setdefault(submission.challenge_id, []).append(submission)
    return [_one(cid, items) for cid, items in sorted(by_challenge.items())]


def _one(challenge_id: str, items: list[Submission]) -> dict[str, Any]:
    graded = [
        s
        for s in items
        if s.verdict is not None and s.verdict.status is not VerdictStatus.SANDBOX_ERROR
    ]
    passed = [s for s in graded if s.verdict is not None and s.verdict.passed]
    first_pass: dict[str, int] = {}
    for submission in sorted(passed, key=lambda s: s.created_at):
        terms = submission.terms
        learner = submission.learner_id
        if learner is None or terms is None or terms.attempt is None or not scores(terms):
            continue
        first_pass.setdefault(f"{submission.key_id}:{learner}", terms.attempt)
    learners = {f"{s.key_id}:{s.learner_id}" for s in items if s.learner_id is not None}
    attempts = Counter(first_pass.values())
    exceptions = Counter(t for t in (exception_type(s) for s in graded) if t is not None)
    return {
        "challenge_id": challenge_id,
        "submissions": len(items),
        "graded": len(graded),
        "passed": len(passed),
        "pass_rate": round(len(passed) / len(graded), 4) if graded else None,
        "learners": len(learners),
        "learners_passed": len(first_pass),
        "attempts_to_pass": {
            "mean": round(sum(first_pass.values()) / len(first_pass), 4) if first_pass else None,
            "counts": {str(n): attempts[n] for n in sorted(attempts)},
        },
        "exceptions": [{"type": t, "count": n} for t, n in exceptions.most_common(5)],
    }
