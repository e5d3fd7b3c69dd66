"""What the API answers, as typed models: the OpenAPI document and ``grader.client`` read them.

The routes build their JSON from the domain (``Submission.public()``, ``public_challenge``);
these models describe it, reusing the domain's own models (``Verdict``, ``Observation``,
``SubmissionStatus``) rather than copying them. Models that a later version may grow are open
(``extra="allow"``) so that an older client still reads a newer server's answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..domain.challenge import Difficulty, Kind, Option
from ..domain.observation import RunMode
from ..domain.sets import EarnedBadge
from ..domain.submission import MetadataValue, RegradeResult, SubmissionStatus
from ..domain.verdict import Verdict


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` to branch on and a message for people."""

    code: str
    message: str
    problems: list[dict[str, str]] | None = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


class ResultEnvironment(BaseModel):
    """Where a result was decided: the environment, its image digest and its packages."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    image_id: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)


class Feedback(BaseModel):
    """What the quiz's rules let the submitter see now (docs/api.md, "Learners and quizzes")."""

    hint: str | None = Field(default=None, description="After a wrong attempt")
    explanation: str | None = Field(default=None, description="After a pass or the last attempt")
    answer: str | None = Field(default=None, description="After a pass or the last attempt")


class PublicResult(Verdict):
    """A verdict as the API shows it: with the raw observation and the environment block."""

    model_config = ConfigDict(frozen=True, extra="allow")

    environment: ResultEnvironment
    attempts_used: int | None = None
    attempts_left: int | None = None
    late: bool = False
    deadline: datetime | None = None
    feedback: Feedback = Field(default_factory=Feedback)


class PublicSubmission(BaseModel):
    """A submission as ``GET /v1/submissions/{id}`` answers it (the code only by its size)."""

    model_config = ConfigDict(extra="allow")

    id: str
    challenge_id: str
    environment: str | None = None
    choice: str | None = None
    learner_id: str | None = None
    callback_url: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    status: SubmissionStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    error: str | None = Field(default=None, description="Why we could not grade it (failed)")
    code_bytes: int | None = None
    revision: str | None = Field(
        default=None, description="The challenge's revision it was admitted to and graded with"
    )
    regrades: list[RegradeResult] = Field(
        default_factory=list, description="Verdicts of later regrades, beside the original"
    )
    attempts_used: int | None = Field(
        default=None, description="This answer's attempt (null without a learner_id)"
    )
    attempts_left: int | None = Field(default=None, description="After this one; null: no limit")
    late: bool = Field(default=False, description="Answered after the learner's deadline")
    deadline: datetime | None = None
    badge: EarnedBadge | None = Field(
        default=None, description="The set's badge, when this answer earned it"
    )
    result: PublicResult | None = Field(
        default=None, description="The verdict, once the submission is done or failed"
    )

    @property
    def final(self) -> bool:
        """Done or failed: nothing about it changes any more."""
        return self.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED)


class BatchAccepted(PublicSubmission):
    """One batch item that was stored and queued (or graded, for a choice)."""

    index: int


class BatchRefused(BaseModel):
    """One batch item that was kept out, with the error a single submission would get."""

    index: int
    error: ErrorDetail


class BatchAnswer(BaseModel):
    """One answer per batch item, in the order sent."""

    submissions: list[BatchAccepted | BatchRefused]


class PublicChallenge(BaseModel):
    """A challenge as the catalog shows it. The fields after ``answerable_by`` (the key, the
    explanation, expectations, limits) are shown to instructors only."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="'<set>/<id>': what a submission names as challenge_id")
    set: str
    title: str
    kind: Kind
    difficulty: Difficulty
    time_limit: int | None = None
    attempts: int | None = None
    prompt: str
    code: str | None = None
    mode: RunMode
    options: list[Option] = Field(default_factory=list)
    hint: str = ""
    environment: str
    filterwarnings: list[str] = Field(default_factory=list)
    answerable_by: list[str] = Field(description="'code', 'choice' or both")
    answer: str | None = None
    explanation: str | None = None
    limits: dict[str, float] | None = None
    expectation: dict[str, Any] | None = None
    environments: dict[str, Any] | None = None
    state: list[str] | None = None


class ChallengeList(BaseModel):
    challenges: list[PublicChallenge]
    count: int


class EnvironmentInfo(BaseModel):
    """One pinned environment, and whether a worker has published its image yet."""

    model_config = ConfigDict(extra="allow")

    name: str
    python: str
    description: str
    packages: dict[str, str]
    locked: dict[str, str]
    image_id: str | None = None
    available: bool


class EnvironmentList(BaseModel):
    environments: list[EnvironmentInfo]


class Health(BaseModel):
    status: str


class ReadinessChecks(BaseModel):
    redis: bool
    workers: int
    docker: bool


class Readiness(BaseModel):
    status: str = Field(description="'ready', or 'not_ready' (answered with 503)")
    checks: ReadinessChecks
