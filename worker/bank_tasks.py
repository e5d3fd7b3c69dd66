"""Celery tasks of the challenge bank: validate an upload by execution; regrade submissions.

Thin, like ``tasks``: parse the payload, read the bank, call the domain (``validate``,
``matrix_row``, ``grade``) on this process's sandbox, store what it found.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Literal

import structlog
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel, ValidationError

from grader.adapters.bank import ChallengeBank
from grader.constants import TASK_REGRADE_CHALLENGE, TASK_VALIDATE_CHALLENGE
from grader.domain.bank import RegradeChange, RegradeJob, RegradeStatus, RevisionStatus
from grader.domain.challenge import Challenge
from grader.domain.environment import discover
from grader.domain.grading import grade
from grader.domain.limits import resolve_limits
from grader.domain.observation import Limits
from grader.domain.submission import RegradeResult, Submission, SubmissionStatus, now
from grader.domain.validation import (
    DEFAULT_RUNS,
    ChallengeReport,
    Check,
    MatrixRow,
    matrix_row,
    validate,
)
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import GraderError, LimitsError, QueueError, StoreError

from .runtime import Runtime, runtime

log = structlog.get_logger(__name__)
FINAL = (SubmissionStatus.DONE, SubmissionStatus.FAILED)


class ValidatePayload(BaseModel):
    v: Literal[1]
    revision: str


class RegradePayload(BaseModel):
    v: Literal[1]
    job: str


def _bank(current: Runtime) -> ChallengeBank:
    if current.bank is None:
        raise StoreError("this worker has no challenge bank")
    return current.bank


def _limits(current: Runtime, challenge: Challenge) -> Limits:
    sandbox = current.settings.sandbox
    return resolve_limits(sandbox.defaults, sandbox.maxima, challenge.limits)


@shared_task(name=TASK_VALIDATE_CHALLENGE, bind=True)
def validate_challenge(self: Task, payload: Any) -> None:
    """Validate one uploaded revision as ``grader challenges validate`` does; publish it if
    every check holds. Our failures are retried, then recorded as ``error`` (not rejected)."""
    try:
        job = ValidatePayload.model_validate(payload)
    except ValidationError:
        log.warning("bad_task_payload", payload=str(payload)[:200])
        return
    current = runtime()
    with current.sandbox.busy():
        try:
            validate_revision(current, job.revision)
        except (GraderError, SoftTimeLimitExceeded) as exc:
            retries = self.request.retries
            log.warning("validation_failed", revision=job.revision, error=str(exc)[:300])
            if retries < current.settings.queue.max_retries and not isinstance(
                exc, SoftTimeLimitExceeded
            ):
                raise self.retry(exc=exc, countdown=min(2**retries, 30)) from None
            with suppress(StoreError):
                reason = f"validation could not run (our side): {exc}"[:500]
                _bank(current).record_validation(job.revision, None, None, error=reason)


def validate_revision(current: Runtime, revision: str) -> None:
    """Run the revision's code, options and key proof ``DEFAULT_RUNS`` times, and its code in
    every environment; record the report (which publishes a revision that passes)."""
    bank = _bank(current)
    doc = bank.revision(revision)
    if doc is None or doc.status is not RevisionStatus.VALIDATING:
        return  # decided already (a redelivery, or an upload repeated while validating)
    challenge = doc.challenge
    try:
        limits = _limits(current, challenge)
    except LimitsError as exc:
        check = Check(name="limits within this service's maxima", ok=False, detail=str(exc))
        report = ChallengeReport(
            challenge=challenge.qualified_id, kind=challenge.kind, checks=(check,)
        )
        bank.record_validation(revision, report, None)
        return
    report = validate(challenge, current.sandbox, limits, runs=DEFAULT_RUNS)
    environments = list(discover(current.settings.images.root))
    matrix: MatrixRow | None = matrix_row(challenge, environments, current.sandbox, limits)
    decided = bank.record_validation(revision, report, matrix)
    log.info(
        "challenge_validated",
        challenge=challenge.qualified_id,
        revision=revision,
        status=decided.status.value if decided else None,
    )


@shared_task(name=TASK_REGRADE_CHALLENGE, bind=True)
def regrade_challenge(self: Task, payload: Any) -> None:
    """Re-run a challenge's stored submissions against its published revision."""
    try:
        job_id = RegradePayload.model_validate(payload).job
    except ValidationError:
        log.warning("bad_task_payload", payload=str(payload)[:200])
        return
    current = runtime()
    bank = _bank(current)
    job = bank.job(job_id)
    if job is None or job.status is not RegradeStatus.RUNNING:
        return
    with current.sandbox.busy():
        try:
            job = regrade(current, job)
        except SoftTimeLimitExceeded:
            job.status, job.error = RegradeStatus.FAILED, "stopped at the task's time limit"
        except GraderError as exc:
            job.status, job.error = RegradeStatus.FAILED, str(exc)[:500]
    job.finished_at = now()
    bank.save_job(job)


def _selected(job: RegradeJob, submission: Submission) -> bool:
    """Whether the job re-runs this submission: final, graded by its code or choice (not our
    failure), and of the revision asked for (default: any but the one regraded against)."""
    if submission.status not in FINAL or submission.verdict is None:
        return False
    if submission.verdict.status is VerdictStatus.SANDBOX_ERROR:
        return False
    wanted = job.request.from_revision
    if wanted is not None:
        return submission.revision == wanted
    return job.request.environment is not None or submission.revision != job.to_revision


def regrade(current: Runtime, job: RegradeJob) -> RegradeJob:
    """Grade each selected submission again; list the verdicts that change. Without
    ``dry_run`` each new verdict is recorded beside the old, and a change is announced by the
    submission's webhook (its record, with the new entry in ``regrades``)."""
    bank = _bank(current)
    target = bank.revision(job.to_revision)
    if target is None:
        raise StoreError(f"revision {job.to_revision} is missing")
    challenge = target.challenge
    limits = _limits(current, challenge)
    gone: list[str] = []
    for submission_id in bank.submissions_of(job.challenge_id, job.request.limit):
        submission = current.store.get(submission_id)
        if submission is None:
            gone.append(submission_id)
            continue
        if not _selected(job, submission):
            continue
        assert submission.verdict is not None  # noqa: S101  _selected checked it
        environment = job.request.environment or submission.environment or challenge.environment
        rerun = submission.model_copy(update={"environment": environment})
        try:
            verdict = grade(rerun, challenge, current.sandbox, limits)
        except GraderError as exc:
            log.warning("regrade_run_failed", submission_id=submission_id, error=str(exc)[:300])
            job.skipped += 1
            continue
        job.regraded += 1
        before, after = submission.verdict.status, verdict.status
        if before == after:
            job.unchanged += 1
        else:
            job.changes.append(
                RegradeChange(
                    submission_id=submission_id,
                    from_revision=submission.revision,
                    from_environment=submission.environment,
                    before=before,
                    after=after,
                    reason=verdict.reason,
                )
            )
        if not job.dry_run:
            _record(current, job, submission_id, environment, verdict, changed=before != after)
        bank.save_job(job)  # progress, for whoever polls
    bank.forget_submissions(job.challenge_id, gone)
    job.status = RegradeStatus.DONE
    return job


def _record(
    current: Runtime,
    job: RegradeJob,
    submission_id: str,
    environment: str,
    verdict: Verdict,
    *,
    changed: bool,
) -> None:
    observation = verdict.observation
    entry = RegradeResult(
        job=job.id,
        revision=job.to_revision,
        environment=environment,
        image_id=observation.environment.image_id if observation is not None else None,
        status=verdict.status,
        reason=verdict.reason,
        score=verdict.score,
    )

    def append(found: Submission) -> Submission | None:
        if any(r.job == job.id for r in found.regrades):
            return None  # recorded already (a redelivered task)
        updated = found.model_copy(deep=True)
        updated.regrades.append(entry)
        return updated

    stored, written = current.store.update(submission_id, append)
    if written and changed and stored is not None and stored.callback_url:
        with suppress(QueueError):
            current.queue.enqueue_webhook(submission_id)
