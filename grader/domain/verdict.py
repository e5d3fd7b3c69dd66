"""Verdicts: an observation compared with an expectation, or a choice with the key."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from .observation import Observation, RunStatus


class VerdictStatus(StrEnum):
    """``passed``/``failed`` for a run that completed; otherwise a run-level status."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    """The learner's code could not be tested: it does not compile or import, or collection
    failed."""
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    SANDBOX_ERROR = "sandbox_error"
    REJECTED = "rejected"


RUN_LEVEL = {
    RunStatus.TIME_LIMIT_EXCEEDED: VerdictStatus.TIME_LIMIT_EXCEEDED,
    RunStatus.MEMORY_LIMIT_EXCEEDED: VerdictStatus.MEMORY_LIMIT_EXCEEDED,
    RunStatus.OUTPUT_LIMIT_EXCEEDED: VerdictStatus.OUTPUT_LIMIT_EXCEEDED,
    RunStatus.SANDBOX_ERROR: VerdictStatus.SANDBOX_ERROR,
}


class SubtestVerdict(BaseModel):
    """One variation of a hidden test (``subTest`` or pytest's ``subtests``)."""

    __test__ = False
    model_config = ConfigDict(frozen=True)

    name: str
    status: str
    message: str | None = None
    output: str = ""


class TestVerdict(BaseModel):
    """One hidden test's result, with its points."""

    __test__ = False
    model_config = ConfigDict(frozen=True)

    name: str
    status: str
    points: float
    max_points: float
    message: str | None = None
    output: str = ""
    task_id: int | None = None
    subtests: tuple[SubtestVerdict, ...] = ()
    wall_seconds: float | None = None
    """An io case's own wall time."""
    diff: str | None = None
    """An io case's expected and actual stdout, as a unified diff, when they differ."""


class Verdict(BaseModel):
    """The grade of one submission, with the raw observation it was decided on."""

    model_config = ConfigDict(frozen=True)

    status: VerdictStatus
    reason: str = ""
    diff: str | None = None
    score: float = 0.0
    points: float = 0.0
    max_points: float = 1.0
    tests: tuple[TestVerdict, ...] = ()
    observation: Observation | None = None

    @property
    def passed(self) -> bool:
        return self.status is VerdictStatus.PASSED


def passing(reason: str = "", **fields: object) -> Verdict:
    """A ``passed`` verdict with full score."""
    return Verdict.model_validate(
        {"status": VerdictStatus.PASSED, "reason": reason, "score": 1.0, "points": 1.0, **fields}
    )


def failing(reason: str, **fields: object) -> Verdict:
    """A ``failed`` verdict, with the reason a learner reads."""
    return Verdict.model_validate({"status": VerdictStatus.FAILED, "reason": reason, **fields})
