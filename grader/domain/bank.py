"""The challenge bank's records: revisions (content-hashed), their validation, regrade jobs.

Pure data and rules; the Redis side is ``grader.adapters.bank``. A revision is one exact
content of a challenge, named by the SHA-256 of its canonical JSON: uploading the same content
twice is the same revision, any change is a new one. Learners only ever reach a revision the
workers have validated by execution (``published``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .challenge import Challenge
from .submission import now
from .validation import ChallengeReport, MatrixRow
from .verdict import VerdictStatus

REVISION_CHARS = 16
"""Hex digits of the SHA-256 a revision is named by (64 bits: no collision in one bank)."""


def revision_of(challenge: Challenge) -> str:
    """The content hash naming this exact challenge: key order and formatting do not count."""
    canonical = json.dumps(challenge.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_CHARS]


def as_written(challenge: Challenge) -> dict[str, Any]:
    """The fields the file set, and only those: what reads back as the same challenge (some
    rules depend on which fields were given, e.g. ``expectation.tests.file``)."""
    written: dict[str, Any] = challenge.model_dump(mode="json", exclude_unset=True)
    return written


class RevisionStatus(StrEnum):
    """Where a revision stands: learners see only ``published`` ones."""

    VALIDATING = "validating"
    PUBLISHED = "published"
    REJECTED = "rejected"
    """Validation by execution refuted a claim of the file: the report says which."""
    ERROR = "error"
    """Validation could not run (our side failed, retried first); upload it again."""


class Source(StrEnum):
    BUNDLED = "bundled"
    """From the service's ``challenges/`` folder, loaded into an empty bank on first start."""
    UPLOADED = "uploaded"


class Revision(BaseModel):
    """One revision of a challenge, its validation and where it stands."""

    model_config = ConfigDict(extra="forbid")

    revision: str
    challenge: Challenge
    status: RevisionStatus
    source: Source = Source.UPLOADED
    uploaded_at: datetime = Field(default_factory=now)
    uploaded_by: str | None = None
    validated_at: datetime | None = None
    report: ChallengeReport | None = None
    matrix: MatrixRow | None = None
    error: str | None = None

    @field_serializer("challenge")
    def _written(self, challenge: Challenge) -> dict[str, Any]:
        return as_written(challenge)

    @property
    def qualified_id(self) -> str:
        return self.challenge.qualified_id

    def summary(self) -> str:
        """Why a rejected revision was refused: its failing checks, one per line."""
        if self.error is not None:
            return self.error
        if self.report is None:
            return ""
        return "\n".join(
            f"{check.name}"
            + (f" [{check.environment}]" if check.environment else "")
            + f": {check.detail}"
            for check in self.report.checks
            if not check.ok
        )


class ChallengeRecord(BaseModel):
    """A challenge's place in the bank: its latest upload, what learners see, its history."""

    model_config = ConfigDict(extra="forbid")

    id: str
    head: str
    """The latest revision uploaded (validating, published or refused)."""
    published: str | None = None
    retired: bool = False
    revisions: list[str] = Field(default_factory=list)
    """Every revision uploaded, oldest first; all are kept, so any submission's stays readable."""


class RegradeStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RegradeChange(BaseModel):
    """One submission whose verdict would change (or did, without ``dry_run``)."""

    model_config = ConfigDict(extra="forbid")

    submission_id: str
    from_revision: str | None
    from_environment: str | None
    before: VerdictStatus
    after: VerdictStatus
    reason: str = ""


class RegradeRequest(BaseModel):
    """The body of ``POST .../regrade``: which stored submissions, graded where."""

    model_config = ConfigDict(extra="forbid")

    from_revision: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{16}$",
        description="Only submissions graded with this revision (default: every revision "
        "but the published one; with an environment, every revision)",
    )
    environment: str | None = Field(
        default=None,
        max_length=100,
        description="Grade in this environment instead of each submission's own",
    )
    limit: int = Field(
        default=100, ge=1, le=500, description="At most this many (the newest) submissions"
    )


class RegradeJob(BaseModel):
    """A regrade: what it re-runs, against which revision, and what would change (or did)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    challenge_id: str
    to_revision: str
    request: RegradeRequest
    dry_run: bool
    status: RegradeStatus = RegradeStatus.RUNNING
    created_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    regraded: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Submissions left out: not final, not found any more, or graded by our failure."""
    changes: list[RegradeChange] = Field(default_factory=list)
    error: str | None = None
