"""Celery tasks: thin, like web views. Parse a versioned payload, grade, store, notify."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import structlog
from celery import Task
from pydantic import BaseModel, ValidationError

from grader.adapters.webhooks import check_callback_url, deliver
from grader.constants import TASK_DELIVER_WEBHOOK, TASK_RUN_SUBMISSION
from grader.domain.limits import resolve_limits
from grader.domain.submission import SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import GraderError, LimitsError, UnsafeCallback

from .celery_app import app
from .grading import grade
from .runtime import Runtime, runtime

log = structlog.get_logger(__name__)


class TaskPayload(BaseModel):
    """Version 1 of every task's payload: the submission to act on."""

    v: Literal[1]
    submission_id: str


def _parse(payload: Any) -> TaskPayload | None:
    try:
        return TaskPayload.model_validate(payload)
    except ValidationError as exc:
        log.warning("bad_task_payload", payload=str(payload)[:200], error=str(exc)[:300])
        return None


@app.task(name=TASK_RUN_SUBMISSION, bind=True)
def run_submission(self: Task, payload: Any) -> None:
    """Grade one submission. Our failures are retried with backoff; the learner's never are."""
    job = _parse(payload)
    if job is None:
        return
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(submission_id=job.submission_id)
    rt = runtime()
    # Busy until the verdict is stored and published: pool refills and container removals
    # wait until then, so they do not compete with this submission for the CPU.
    with rt.sandbox.busy():
        _run(self, rt, job)


def _run(task: Task, rt: Runtime, job: TaskPayload) -> None:
    bound = log.bind(submission_id=job.submission_id)
    submission = rt.store.mark_running(job.submission_id)
    if submission is None:
        bound.warning("submission_gone")
        return
    if submission.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED):
        return  # already graded (a redelivery after a crash that happened after storing)
    challenge = rt.challenges.get(submission.challenge_id)
    if challenge is None:
        verdict = Verdict(
            status=VerdictStatus.REJECTED, reason=f"unknown challenge {submission.challenge_id!r}"
        )
        _finish(rt, submission, verdict)
        return
    environment = submission.environment or challenge.environment
    try:
        limits = resolve_limits(
            rt.settings.sandbox.defaults, rt.settings.sandbox.maxima, challenge.limits
        )
        verdict = grade(submission, challenge, rt.sandbox, limits)
    except LimitsError as exc:
        _finish(rt, submission, Verdict(status=VerdictStatus.REJECTED, reason=str(exc)))
        return
    except GraderError as exc:
        retries = task.request.retries
        bound.warning("grading_failed", error=str(exc), retries=retries)
        if retries < rt.settings.queue.max_retries:
            countdown = min(2**retries, rt.settings.queue.retry_backoff_max_seconds)
            raise task.retry(exc=exc, countdown=countdown) from None
        verdict = Verdict(
            status=VerdictStatus.SANDBOX_ERROR,
            reason="could not grade this submission (our fault, not yours)",
        )
        _finish(rt, submission, verdict, failed=True, error=str(exc))
        return
    observation = verdict.observation
    bound.info(
        "graded",
        verdict=verdict.status.value,
        container_id=observation.container_id if observation else None,
        pool_hit=observation.pool_hit if observation else None,
    )
    packages = {}
    if observation is not None:
        packages = rt.sandbox.resolve(environment).packages
    _finish(rt, submission, verdict, packages=packages)


def _finish(
    rt: Runtime,
    submission: Any,
    verdict: Verdict,
    *,
    failed: bool = False,
    error: str | None = None,
    packages: dict[str, str] | None = None,
) -> None:
    done = rt.store.finish(submission, verdict, failed=failed, error=error, packages=packages)
    if done.callback_url:
        rt.queue.enqueue_webhook(done.id)


@app.task(name=TASK_DELIVER_WEBHOOK, bind=True)
def deliver_webhook(self: Task, payload: Any) -> None:
    """POST the signed result to the callback URL; retry on 5xx, timeouts and refusals."""
    job = _parse(payload)
    if job is None:
        return
    rt = runtime()
    bound = log.bind(submission_id=job.submission_id)
    submission = rt.store.get(job.submission_id)
    if submission is None or not submission.callback_url:
        return
    key = next((k for k in rt.settings.api.keys if k.id == submission.key_id), None)
    if key is None or key.webhook_secret is None:
        bound.warning("webhook_without_secret", key_id=submission.key_id)
        return
    try:  # resolve again at delivery time: DNS may have changed since the submission
        check_callback_url(submission.callback_url, rt.settings.api.webhook_allow_hosts)
    except UnsafeCallback as exc:
        bound.warning("webhook_refused", error=str(exc))
        return
    body = json.dumps(submission.public(), separators=(",", ":")).encode()
    attempts = rt.settings.api.webhook_max_attempts
    try:
        status = deliver(
            submission.callback_url,
            body,
            key.webhook_secret.get_secret_value(),
            rt.settings.api.webhook_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        status, reason = 0, str(exc)
    else:
        reason = f"HTTP {status}"
    if 200 <= status < 300:
        rt.store.count("webhooks_delivered")
        bound.info("webhook_delivered", status=status)
        return
    retryable = status == 0 or status >= 500 or status == 429
    if retryable and self.request.retries + 1 < attempts:
        bound.info("webhook_retry", reason=reason, retries=self.request.retries)
        raise self.retry(countdown=min(2**self.request.retries, 60), max_retries=attempts)
    rt.store.count("webhooks_failed")
    bound.warning("webhook_failed", reason=reason)
