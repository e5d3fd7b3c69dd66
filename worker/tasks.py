"""Celery tasks: thin, like web views. Parse a versioned payload, grade, store, notify.

Tasks are ``shared_task``s: the worker's app (``celery_app``) binds them when it loads this
module, and unit tests call the functions below them without building an app.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel, ValidationError

from grader.adapters.bank import challenge_for
from grader.adapters.webhooks import deliver
from grader.constants import TASK_DELIVER_WEBHOOK, TASK_RUN_SUBMISSION
from grader.domain.bank import revision_of
from grader.domain.grading import grade
from grader.domain.limits import resolve_limits
from grader.domain.runs import execute, run_record
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import (
    GraderError,
    LimitsError,
    SandboxError,
    StoreError,
    UnsafeCallback,
    WebhookUndelivered,
)
from grader.settings import get_settings

from .finishing import finish
from .runtime import Runtime, runtime

log = structlog.get_logger(__name__)
SANDBOX_ERROR_REASON = "could not grade this submission (our fault, not yours)"
WEBHOOK_BACKOFF_MAX_SECONDS = 60


class TaskPayload(BaseModel):
    """Version 1 of every task's payload: the submission to act on."""

    v: Literal[1]
    submission_id: str


@dataclass(frozen=True)
class Retry:
    """Our side failed: run the task again (Celery's backoff decides when)."""

    error: GraderError


@dataclass(frozen=True)
class Outcome:
    """What grading decided, to be stored."""

    verdict: Verdict
    failed: bool = False
    error: str | None = None
    packages: dict[str, str] | None = None


def _parse(payload: Any) -> TaskPayload | None:
    try:
        return TaskPayload.model_validate(payload)
    except ValidationError as exc:
        log.warning("bad_task_payload", payload=str(payload)[:200], error=str(exc)[:300])
        return None


class InfrastructureRetried(Task):  # type: ignore[misc]
    """A task whose ``GraderError``s are retried by Celery itself (``autoretry_for``):
    exponential backoff with full jitter, capped and counted by the settings.

    The cap and the count are read when the worker binds the task (``retry_backoff_max``)
    and when it retries (``max_retries``), from the worker's settings.
    """

    autoretry_for = (GraderError,)
    retry_backoff = True
    retry_jitter = True

    @property
    def retry_backoff_max(self) -> int:
        return get_settings().queue.retry_backoff_max_seconds

    @property
    def max_retries(self) -> int:
        return get_settings().queue.max_retries


class WebhookRetried(Task):  # type: ignore[misc]
    """A webhook delivery whose ``GraderError``s Celery retries with backoff and jitter."""

    autoretry_for = (GraderError,)
    retry_backoff = True
    retry_jitter = True
    retry_backoff_max = WEBHOOK_BACKOFF_MAX_SECONDS

    @property
    def max_retries(self) -> int:
        return get_settings().api.webhook_max_attempts


@shared_task(name=TASK_RUN_SUBMISSION, bind=True, base=InfrastructureRetried)
def run_submission(self: Task, payload: Any) -> None:
    """Grade one submission. Our failures are retried with backoff; the learner's never are."""
    job = _parse(payload)
    if job is None:
        return
    structlog.contextvars.bind_contextvars(submission_id=job.submission_id)
    current = runtime()
    # Busy until the verdict is stored and published: pool refills and container removals
    # wait until then, so they do not compete with this submission for the CPU.
    with current.sandbox.busy():
        try:
            retry = grade_submission(current, job.submission_id, retries=self.request.retries)
        except SoftTimeLimitExceeded:
            retry = Retry(SandboxError("grading ran past the task's soft time limit"))
    if retry is not None:
        raise retry.error  # autoretry_for: Celery retries it, with backoff and jitter


def grade_submission(current: Runtime, submission_id: str, *, retries: int) -> Retry | None:
    """Grade and store one submission; a ``Retry`` when our side failed and may try again.

    A learner's code never causes a retry: what it does is in the verdict. After
    ``max_retries`` infrastructure failures the submission ends ``failed`` with
    ``sandbox_error``, never blamed on the learner; so does an unexpected exception (a bug, a
    challenge the worker cannot use) at once, since running it again would fail the same way.
    """
    bound = log.bind(submission_id=submission_id)
    try:
        submission = current.store.mark_running(submission_id, worker=current.name)
    except StoreError as exc:
        bound.warning("submission_not_started", error=str(exc)[:300])
        return Retry(exc)
    if submission is None:
        bound.warning("submission_gone")
        return None
    if submission.request_id is not None:
        structlog.contextvars.bind_contextvars(request_id=submission.request_id)
    if submission.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED):
        return None  # already graded (a redelivery after a crash that happened after storing)
    retries = max(retries, submission.attempts - 1)  # a sweeper's re-queue restarts Celery's count
    try:
        outcome = _grade(current, submission, retries)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # never left running, never retried: ends failed, logged in full
        bound.exception("grading_crashed")
        verdict = Verdict(status=VerdictStatus.SANDBOX_ERROR, reason=SANDBOX_ERROR_REASON)
        outcome = Outcome(verdict, failed=True, error=describe(exc))
    if isinstance(outcome, Retry):
        return outcome
    problem = finish(
        current,
        submission,
        outcome.verdict,
        failed=outcome.failed,
        error=outcome.error,
        packages=outcome.packages,
    )
    return None if problem is None else Retry(problem)


def _grade(current: Runtime, submission: Submission, retries: int) -> Outcome | Retry:
    """The outcome of grading one submission, or a ``Retry`` when our side failed."""
    bound = log.bind(submission_id=submission.id)
    try:
        challenge = challenge_for(current.challenges, submission.challenge_id, submission.revision)
    except StoreError as exc:  # the bank is in Redis: our side, retried
        return Retry(exc)
    if challenge is None and submission.run is None:
        reason = f"unknown challenge {submission.challenge_id!r}"
        return Outcome(Verdict(status=VerdictStatus.REJECTED, reason=reason))
    if challenge is not None:
        submission.revision = revision_of(challenge)  # stored with the verdict
    settings = current.settings
    sandbox = settings.sandbox
    try:
        if submission.run is not None:  # a raw run: its observation is the result
            limits = resolve_limits(sandbox.defaults, sandbox.maxima, submission.run.limits)
            environment = submission.environment or ""
            verdict = execute(submission.run, environment, current.sandbox, limits)
        elif challenge is not None:
            limits = resolve_limits(sandbox.defaults, sandbox.maxima, challenge.limits)
            verdict = grade(submission, challenge, current.sandbox, limits)
        observation = verdict.observation
        packages = {}
        if observation is not None:
            packages = current.sandbox.resolve(observation.environment.name).packages
    except LimitsError as exc:
        return Outcome(Verdict(status=VerdictStatus.REJECTED, reason=str(exc)))
    except GraderError as exc:
        bound.warning("grading_failed", error=str(exc), retries=retries)
        if retries < settings.queue.max_retries:
            return Retry(exc)
        verdict = Verdict(status=VerdictStatus.SANDBOX_ERROR, reason=SANDBOX_ERROR_REASON)
        return Outcome(verdict, failed=True, error=str(exc))
    bound.info(
        "graded",
        verdict=verdict.status.value,
        container_id=observation.container_id if observation else None,
        pool_hit=observation.pool_hit if observation else None,
    )
    if verdict.status is VerdictStatus.SANDBOX_ERROR:  # our fault, seen by the comparison
        return Outcome(verdict, failed=True, error=verdict.reason, packages=packages)
    return Outcome(verdict, packages=packages)


def describe(exc: BaseException) -> str:
    """An unexpected exception as ``re.error: missing ), ...``: its type and message."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    return f"{name}: {exc}"[:500]


@shared_task(name=TASK_DELIVER_WEBHOOK, bind=True, base=WebhookRetried)
def deliver_webhook(self: Task, payload: Any) -> None:
    """POST the signed result to the callback URL; retry on 5xx, timeouts and refusals."""
    job = _parse(payload)
    if job is None:
        return
    structlog.contextvars.bind_contextvars(submission_id=job.submission_id)
    current = runtime()
    api = current.settings.api
    try:
        submission = current.store.get(job.submission_id)
    except StoreError as exc:
        log.warning("webhook_store_unavailable", error=str(exc)[:300])
        raise  # autoretry_for: Celery retries it, with backoff and jitter
    if submission is None or not submission.callback_url:
        return
    if submission.request_id is not None:
        structlog.contextvars.bind_contextvars(request_id=submission.request_id)
    key = next((k for k in api.keys if k.id == submission.key_id), None)
    if key is None or key.webhook_secret is None:
        log.warning("webhook_without_secret", key_id=submission.key_id)
        return
    document = run_record(submission) if submission.run is not None else submission.public()
    body = json.dumps(document, separators=(",", ":")).encode()
    try:  # resolves once, checks every address, connects to a checked one
        status = deliver(
            submission.callback_url,
            body,
            key.webhook_secret.get_secret_value(),
            api.webhook_timeout_seconds,
            allow_hosts=api.webhook_allow_hosts,
        )
    except UnsafeCallback as exc:  # DNS may have changed since the submission
        log.warning("webhook_refused", error=str(exc))
        return
    except httpx.HTTPError as exc:
        status, reason = 0, str(exc)
    else:
        reason = f"HTTP {status}"
    if 200 <= status < 300:
        with suppress(StoreError):  # delivered is delivered; the counter is best effort
            current.store.count("webhooks_delivered")
        log.info("webhook_delivered", status=status)
        return
    retryable = status == 0 or status >= 500 or status == 429
    attempts = api.webhook_max_attempts
    if retryable and self.request.retries + 1 < attempts:
        log.info("webhook_retry", reason=reason, retries=self.request.retries)
        raise WebhookUndelivered(f"{submission.callback_url}: {reason}")  # retried by Celery
    with suppress(StoreError):
        current.store.count("webhooks_failed")
    log.warning("webhook_failed", reason=reason)
