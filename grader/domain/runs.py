"""Raw runs: code without a challenge, run in the same hardened sandbox, answered with the
observation itself (``POST /v1/runs``).

A raw run is stored and queued as a submission record with ``run`` set, so it shares the
submission's lifecycle, durability (outbox, sweeper, retries), long-poll and webhook. Nothing
is compared: its result is the ``Observation``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .observation import Limits, Observation, RunMode, RunStatus
from .sandbox import Sandbox
from .submission import MetadataValue, RawRun, Submission, Text, Unicode
from .verdict import RUN_LEVEL, Verdict, VerdictStatus

__all__ = ["RUN_CHALLENGE_ID", "RawRun", "RunCreate", "RunRecord", "execute", "run_record"]

RUN_CHALLENGE_ID = "-/run"
"""The challenge id of a raw run's record: no challenge has it (ids are ``<set>/<id>`` slugs)."""


class RunCreate(BaseModel):
    """The body of ``POST /v1/runs``."""

    model_config = ConfigDict(extra="forbid")

    environment: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="An environment name, as listed by GET /v1/environments"
    )
    files: dict[Annotated[str, Unicode], Text] = Field(
        min_length=1, description="The files to lay out, by relative path: {path: text}"
    )
    entry: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The file that runs (a script) or that pytest runs (mode pytest)"
    )
    mode: RunMode = RunMode.SCRIPT
    stdin: Text = Field(default="", description="What the program reads on standard input")
    limits: dict[Annotated[str, StringConstraints(max_length=40)], float] = Field(
        default_factory=dict,
        description="Overrides of the default limits (wall_seconds, memory_mib, ...), each "
        "within the server's maximum",
    )
    callback_url: Annotated[str, StringConstraints(max_length=2000), Unicode] | None = Field(
        default=None, description="HTTPS (or allow-listed) URL that receives the signed result"
    )
    metadata: dict[Annotated[str, StringConstraints(max_length=100), Unicode], MetadataValue] = (
        Field(default_factory=dict, max_length=50)
    )

    def raw(self) -> RawRun:
        return RawRun(
            files=self.files,
            entry=self.entry,
            mode=self.mode,
            stdin=self.stdin,
            limits=self.limits,
        )


class RunRecord(BaseModel):
    """A raw run as the API answers it: its lifecycle and, once done, its observation."""

    id: str
    status: str = Field(description="queued, running, done or failed (failed: our side)")
    environment: str
    mode: RunMode
    entry: str
    files: dict[str, int] = Field(description="Each file's size in bytes")
    stdin_bytes: int
    limits: dict[str, float]
    metadata: dict[str, MetadataValue]
    callback_url: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    observation: Observation | None = Field(
        description="What the run did (stdout, stderr, exit code, exception, time, limits)"
    )
    image_packages: dict[str, str] = Field(description="The environment image's packages")
    error: str | None = Field(description="Why we could not run it (failed only)")


def run_record(submission: Submission) -> dict[str, Any]:
    """The JSON of a raw run's record (``RunRecord``)."""
    run = submission.run
    if run is None:
        raise ValueError(f"{submission.id} is not a raw run")
    body = submission.model_dump(mode="json", include={"created_at", "started_at", "finished_at"})
    verdict = submission.verdict
    observation = verdict.observation if verdict is not None else None
    return {
        "id": submission.id,
        "status": submission.status.value,
        "environment": submission.environment or "",
        "mode": run.mode.value,
        "entry": run.entry,
        "files": {path: len(text.encode()) for path, text in run.files.items()},
        "stdin_bytes": len(run.stdin.encode()),
        "limits": run.limits,
        "metadata": submission.metadata,
        "callback_url": submission.callback_url,
        **body,
        "attempts": submission.attempts,
        "observation": observation.model_dump(mode="json") if observation else None,
        "image_packages": submission.environment_packages,
        "error": submission.error,
    }


def execute(run: RawRun, environment: str, sandbox: Sandbox, limits: Limits) -> Verdict:
    """Run it; the record's verdict only carries the observation (a raw run has no key).

    Its status is the run's own: ``passed`` for a run that completed or did not compile (the
    run did what it was asked), or the run-level status a limit or our side gave it.
    """
    observation = sandbox.run(environment, run.request(), limits)
    status = RUN_LEVEL.get(observation.status, VerdictStatus.PASSED)
    reason = observation.error or observation.status.value
    if observation.status is RunStatus.SANDBOX_ERROR:
        reason = f"the sandbox failed: {reason}"
    return Verdict(status=status, reason=reason, observation=observation, score=0.0)
