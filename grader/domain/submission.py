"""Submissions: what a platform sent, and its lifecycle (queued -> running -> done | failed)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    model_validator,
)

from . import feedback
from .feedback import Terms
from .observation import RunMode, RunRequest
from .sets import EarnedBadge
from .verdict import Verdict, VerdictStatus


class SubmissionStatus(StrEnum):
    """Lifecycle. ``failed`` means we could not grade (never the learner's fault)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Role(StrEnum):
    """What an API key may do."""

    SUBMITTER = "submitter"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"


def _unicode(value: object) -> object:
    """Refuse lone surrogates: Python's JSON reader lets ``"\\ud800"`` through, UTF-8 cannot."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _scalar(value: object) -> str | int | float | bool | None:
    """One metadata value: a string, a finite number, a boolean or null."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number (NaN, Infinity and 1e400 are not)")
        return value
    if isinstance(value, str):
        _unicode(value)
        return value
    raise ValueError("must be a string, a number, a boolean or null")


_UNICODE = BeforeValidator(_unicode)
"""Last in an ``Annotated``, so it runs before the string's own checks (one message)."""
Unicode = _UNICODE
Text = Annotated[str, _UNICODE]
"""A string that can be stored and answered as UTF-8."""
Scalar = str | int | float | bool | None
MetadataValue = Annotated[Scalar, PlainValidator(_scalar, json_schema_input_type=Scalar)]
"""A scalar that JSON can carry both ways: Python's reader takes ``NaN``; its writer does not."""


class SubmissionRequest(BaseModel):
    """The body of ``POST /v1/submissions``: code or a choice, never both."""

    model_config = ConfigDict(extra="forbid")

    challenge_id: Annotated[str, StringConstraints(min_length=3, max_length=130), _UNICODE] = Field(
        description="'<set>/<id>', as listed by GET /v1/challenges"
    )
    code: Text | None = Field(default=None, description="Python source to run")
    files: dict[Annotated[str, _UNICODE], Text] | None = Field(
        default=None,
        description="Several files by relative path, where the challenge takes them "
        "(its 'files' policy names the entry and the allowed paths)",
    )
    choice: Annotated[str, StringConstraints(pattern=r"^[A-Z]$")] | None = Field(
        default=None, description="An option label, for multiple-choice answers"
    )
    learner_id: Annotated[str, StringConstraints(max_length=200), _UNICODE] | None = None
    callback_url: Annotated[str, StringConstraints(max_length=2000), _UNICODE] | None = Field(
        default=None, description="HTTPS (or allow-listed) URL that receives the signed result"
    )
    metadata: dict[Annotated[str, StringConstraints(max_length=100), _UNICODE], MetadataValue] = (
        Field(default_factory=dict, max_length=50)
    )

    @model_validator(mode="after")
    def _code_xor_choice(self) -> SubmissionRequest:
        if sum(x is not None for x in (self.code, self.choice, self.files)) != 1:
            raise ValueError("send exactly one of 'code', 'files' or 'choice'")
        return self


class RawRun(BaseModel):
    """What a raw run (``POST /v1/runs``, no challenge) executes, as stored with its record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: dict[str, str] = Field(min_length=1)
    entry: str
    mode: RunMode = RunMode.SCRIPT
    stdin: str = ""
    limits: dict[str, float] = Field(default_factory=dict)

    def request(self) -> RunRequest:
        return RunRequest(mode=self.mode, files=self.files, entry=self.entry, stdin=self.stdin)


def now() -> datetime:
    return datetime.now(UTC)


class RegradeResult(BaseModel):
    """A verdict recorded by a regrade, beside the submission's own (never instead of it)."""

    model_config = ConfigDict(extra="forbid")

    job: str
    revision: str
    environment: str
    image_id: str | None = None
    status: VerdictStatus
    reason: str = ""
    score: float = 0.0
    at: datetime = Field(default_factory=now)


class Submission(BaseModel):
    """A stored submission with its lifecycle and, once done, its verdict."""

    model_config = ConfigDict(extra="forbid")

    id: str
    key_id: str
    challenge_id: str
    revision: str | None = None
    """The challenge revision (content hash) this submission was admitted to and graded with."""
    environment: str | None = None
    code: str | None = None
    files: dict[str, str] | None = None
    choice: str | None = None
    learner_id: str | None = None
    callback_url: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    status: SubmissionStatus = SubmissionStatus.QUEUED
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    verdict: Verdict | None = None
    environment_packages: dict[str, str] = Field(default_factory=dict)
    error: str | None = None
    request_id: str | None = None
    """The ``X-Request-ID`` of the request that created it: the worker logs it."""
    terms: Terms | None = None
    """What it was admitted under (attempt, deadline, feedback rules); never shown whole."""
    badge: EarnedBadge | None = None
    """The set's badge, when this submission earned it."""
    regrades: list[RegradeResult] = Field(default_factory=list)
    """Verdicts of later regrades (other revisions or environments), oldest first."""
    run: RawRun | None = None
    """Set for a raw run: no challenge, the observation is the result (``domain/runs.py``)."""

    def shown(self, *, full: bool = False) -> Submission:
        """This submission with its verdict as its reader may see it (``full``: an
        instructor's whole verdict; otherwise redacted while attempts remain)."""
        if self.terms is None or self.verdict is None:
            return self
        verdict = feedback.shown(self.verdict, self.terms, full=full)
        return self.model_copy(update={"verdict": verdict})

    def public(self, *, full: bool = False) -> dict[str, Any]:
        """The JSON the API returns (the code is echoed back only by length); the result
        shaped by ``feedback`` for a submitter, whole for an instructor (``full``)."""
        shown = self.shown(full=full)
        hidden = {"code", "files", "key_id", "environment_packages", "terms", "request_id", "run"}
        body = shown.model_dump(mode="json", exclude=hidden)
        body["code_bytes"] = len(self.code.encode()) if self.code is not None else None
        if self.files is not None:
            body["files"] = {path: len(text.encode()) for path, text in self.files.items()}
        standing = feedback.standing(self.terms)
        body.update(standing)
        if self.verdict is not None and shown.verdict != self.verdict:
            # Redacted: a regrade's reason could state the expected value just the same.
            for regrade in body.get("regrades", []):
                regrade["reason"] = ""
        verdict = body.pop("verdict")
        body["result"] = None
        if verdict is not None:
            observation = verdict.pop("observation", None)
            body["result"] = {
                **verdict,
                **standing,
                "feedback": feedback.block(shown.verdict, self.terms, full=full),
                "observation": observation,
                "environment": {
                    "name": self.environment,
                    "image_id": (observation or {}).get("environment", {}).get("image_id"),
                    "packages": self.environment_packages,
                },
            }
        return body
