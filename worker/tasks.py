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

from grader.adapters.webhooks import deliver
from grader.constants import TASK_DELIVER_WEBHOOK, TASK_RUN_SUBMISSION
from grader.domain.grading import grade
from grader.domain.limits import resolve_limits
from grader.domain.runs import execute, run_record
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import GraderError, LimitsError, SandboxError, StoreError, UnsafeCallback

from .finishing import finish
from .runtime import Runtime, runtime

log = structlog.get_logger(__name__)
SANDBOX_ERROR_REASON = "could not grade this submission (our fault, not yours)"


class TaskPayload(BaseModel):
    """Version 1 of every task's payload: the submission to act on."""

    v: Literal[1]
    submission_id: str


@dataclass(frozen=True)
class Retry:
    """Our side failed: run the task again after ``countdown`` seconds."""

    error: GraderError
    countdown: float


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


@shared_task(name=TASK_RUN_SUBMISSION, bind=True)
def run_submission(self: Task, payload: Any) -> None:
    """Grade one submission. Our failures are retried with backoff; the learner's never are."""
    job = _parse(payload)
    if job is None:
        return
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(submission_id=job.submission_id)
    current = runtime()
    retries = self.request.retries
    # Busy until the verdict is stored and published: pool refills and container removals
    # wait until then, so they do not compete with this submission for the CPU.
    with current.sandbox.busy():
        try:
            retry = grade_submission(current, job.submission_id, retries=retries)
        except SoftTimeLimitExceeded:
            error = SandboxError("grading ran past the task's soft time limit")
            retry = Retry(error, _backoff(current, retries))
    if retry is not None:
        raise self.retry(
            exc=retry.error,
            countdown=retry.countdown,
            max_retries=current.settings.queue.max_retries,
        )


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
        return Retry(exc, _backoff(current, retries))
    if submission is None:
        bound.warning("submission_gone")
        return None
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
    return None if problem is None else Retry(problem, _backoff(current, retries))


def _grade(current: Runtime, submission: Submission, retries: int) -> Outcome | Retry:
    """The outcome of grading one submission, or a ``Retry`` when our side failed."""
    bound = log.bind(submission_id=submission.id)
    challenge = current.challenges.get(submission.challenge_id)
    if challenge is None and submission.run is None:
        reason = f"unknown challenge {submission.challenge_id!r}"
        return Outcome(Verdict(status=VerdictStatus.REJECTED, reason=reason))
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
            return Retry(exc, _backoff(current, retries))
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


def _backoff(current: Runtime, retries: int) -> float:
    return float(min(2**retries, current.settings.queue.retry_backoff_max_seconds))


@shared_task(name=TASK_DELIVER_WEBHOOK, bind=True)
def deliver_webhook(self: Task, payload: Any) -> None:
    """POST the signed result to the callback URL; retry on 5xx, timeouts and refusals."""
    job = _parse(payload)
    if job is None:
        return
    current = runtime()
    bound = log.bind(submission_id=job.submission_id)
    api = current.settings.api
    try:
        submission = current.store.get(job.submission_id)
    except StoreError as exc:
        bound.warning("webhook_store_unavailable", error=str(exc)[:300])
        raise self.retry(
            exc=exc,
            countdown=min(2**self.request.retries, 60),
            max_retries=api.webhook_max_attempts,
        ) from None
    if submission is None or not submission.callback_url:
        return
    key = next((k for k in api.keys if k.id == submission.key_id), None)
    if key is None or key.webhook_secret is None:
        bound.warning("webhook_without_secret", key_id=submission.key_id)
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
        bound.warning("webhook_refused", error=str(exc))
        return
    except httpx.HTTPError as exc:
        status, reason = 0, str(exc)
    else:
        reason = f"HTTP {status}"
    if 200 <= status < 300:
        with suppress(StoreError):  # delivered is delivered; the counter is best effort
            current.store.count("webhooks_delivered")
        bound.info("webhook_delivered", status=status)
        return
    retryable = status == 0 or status >= 500 or status == 429
    attempts = api.webhook_max_attempts
    if retryable and self.request.retries + 1 < attempts:
        bound.info("webhook_retry", reason=reason, retries=self.request.retries)
        raise self.retry(countdown=min(2**self.request.retries, 60), max_retries=attempts)
    with suppress(StoreError):
        current.store.count("webhooks_failed")
    bound.warning("webhook_failed", reason=reason)
