"""The sweeper: no submission stays ``queued`` or ``running`` for good.

Celery redelivers the task of a worker that died only after the visibility timeout, and a
task whose acknowledgement or retry fell into a Redis restart may be gone for good. The
stored record is the truth, so every worker process sweeps the index of unfinished
submissions now and then (no leader: any number may sweep at once) and re-queues what is
stuck, as one more attempt, or past the retry budget ends it ``failed`` with
``sandbox_error``. Stuck means (``timing.Budget``):

- ``running`` in a worker process whose heartbeat expired (SIGKILL, OOM, a hard time limit);
- ``running`` for longer than any task can run (the hard time limit) and a retry countdown;
- ``queued`` for longer than Celery takes to redeliver a task (the visibility timeout) and
  to run it;
- ``queued`` and still in the outbox of runs ``unsent_after_seconds`` after it was stored:
  its task was never sent (the broker failed, or the API died, between storing and sending).
  It is sent now, counted as a re-queue but not as an attempt (none was lost).

The same sweep sends again the validation of a challenge revision still ``validating`` long
after its task was sent (``grader.adapters.bank``).

Each re-queue or failure is conditional on the record being unchanged since the sweeper
read it (compared by ``updated_at`` inside a WATCH/MULTI), so of two sweepers racing for one
submission exactly one acts. The same sweep queues webhooks left in the outbox.
"""

from __future__ import annotations

import random
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from grader.adapters.store import FINAL
from grader.domain.bank import RevisionStatus
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import GraderError

from . import timing
from .finishing import queue_webhook

if TYPE_CHECKING:
    from .runtime import Runtime

log = structlog.get_logger(__name__)
SWEEP_BATCH = 100
"""At most this many stuck submissions of each state per sweep; the next sweep takes more."""
STUCK_REASON = "could not be graded in time (our fault, not yours)"


@dataclass
class Sweep:
    """What one sweep did."""

    requeued: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    """Queued submissions whose task had never been sent."""
    failed: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    """Revisions still validating long after their task was sent: sent again."""


def sweep_forever(current: Runtime) -> None:
    """Sweep every ``SWEEP_SECONDS`` or so (jittered, so processes spread out) until stopped."""
    while True:
        jitter = random.uniform(0.5, 1.5)  # noqa: S311  spreads sweeps out; not for secrecy
        if current.stopping.wait(timing.SWEEP_SECONDS * jitter):
            return
        try:
            done = sweep(current)
        except GraderError as exc:
            log.warning("sweep_failed", error=str(exc)[:300])
        except Exception:  # the sweeper must outlive any one bad record or bug
            log.exception("sweep_crashed")
        else:
            if done.requeued or done.sent or done.failed or done.webhooks or done.validations:
                log.info("swept", **vars(done))


def sweep(current: Runtime, now: float | None = None) -> Sweep:
    """One sweep: re-queue or end what is stuck, and queue webhooks left in the outbox."""
    at = time.time() if now is None else now
    store, limits, done = current.store, current.budget, Sweep()
    store.count("sweeps")
    _send_unsent(current, at, done)
    orphans = set(store.orphans())
    stale = store.stale(
        queued_before=at - limits.queued_stale,
        running_before=at - limits.running_stale,
        limit=SWEEP_BATCH,
    )
    for submission_id in dict.fromkeys(i for i in [*stale, *orphans] if i not in done.sent):
        try:
            seen = store.get(submission_id)
            if seen is None or seen.status in FINAL:
                store.forget(submission_id)
            elif _stuck(seen, at, limits, orphaned=submission_id in orphans):
                _settle(current, seen, done)
        except GraderError:
            raise  # Redis or the broker is down: the next sweep tries again
        except Exception:  # one unreadable record must not stop the others being swept
            log.exception("sweep_skipped", submission_id=submission_id)
    due = at - (timing.FINISH_SECONDS + timing.STALE_MARGIN_SECONDS)
    for submission_id in store.webhooks_due(due, SWEEP_BATCH):
        queue_webhook(current, submission_id)
        done.webhooks.append(submission_id)
    _resend_validations(current, at, at - limits.queued_stale, done)
    return done


def _resend_validations(current: Runtime, at: float, before: float, done: Sweep) -> None:
    """Send again the validation of each revision still ``validating`` since ``before``: its
    task was lost (a Redis restart, an API crash after storing). A second run of one that was
    only slow changes nothing: the first result recorded decides."""
    if current.bank is None:
        return
    for revision in current.bank.validations_due(before, SWEEP_BATCH, at):
        doc = current.bank.revision(revision)
        if doc is None or doc.status is not RevisionStatus.VALIDATING:
            current.bank.record_validation(revision, None, None)  # takes it off the list
            continue
        current.queue.enqueue_validation(revision, doc.challenge.environment)
        done.validations.append(revision)


def _send_unsent(current: Runtime, at: float, done: Sweep) -> None:
    """Send the task of each queued submission left in the outbox of runs for longer than
    ``unsent_after_seconds``. Claiming an entry re-scores it, so of two sweepers one sends it,
    and a send that fails is tried again by a later sweep."""
    store = current.store
    due = at - current.settings.queue.unsent_after_seconds
    for submission_id in store.runs_due(due, SWEEP_BATCH, at):
        try:
            seen = store.get(submission_id)
            environment = _environment(current, seen) if seen else None
            if seen is None or seen.status is not SubmissionStatus.QUEUED or environment is None:
                store.run_queued(submission_id)  # nothing to send (the stale sweep ends it)
                continue
            current.queue.enqueue_run(seen.id, environment)
            store.run_queued(seen.id, count="sweep_requeues")
        except GraderError:
            raise  # Redis or the broker is down: the entry is due again after the margin
        except Exception:  # one unreadable record must not stop the others being sent
            log.exception("sweep_skipped", submission_id=submission_id)
            continue
        log.warning("unsent_submission_sent", submission_id=seen.id, environment=environment)
        done.sent.append(seen.id)


def _environment(current: Runtime, seen: Submission) -> str | None:
    """Where the submission runs: as stored, or (an older record) its challenge's."""
    challenge = current.challenges.get(seen.challenge_id)
    return seen.environment or (challenge.environment if challenge else None)


def _stuck(seen: Submission, at: float, limits: timing.Budget, *, orphaned: bool) -> bool:
    if seen.status is SubmissionStatus.QUEUED:
        return seen.updated_at.timestamp() <= at - limits.queued_stale
    started = (seen.started_at or seen.updated_at).timestamp()
    return started <= at - (limits.orphaned if orphaned else limits.running_stale)


def _settle(current: Runtime, seen: Submission, done: Sweep) -> None:
    """Re-queue a stuck submission as one more attempt, or end it past its retry budget.

    Every attempt counts once: a pickup when it starts (``mark_running``), a delivery lost
    before any pickup when a sweeper finds it still ``queued``.
    """
    bound = log.bind(submission_id=seen.id, status=seen.status.value, attempts=seen.attempts)
    tries = seen.attempts + (1 if seen.status is SubmissionStatus.QUEUED else 0)
    environment = _environment(current, seen)

    def unchanged(stored: Submission) -> bool:
        return stored.status is seen.status and stored.updated_at == seen.updated_at

    if tries > current.settings.queue.max_retries or environment is None:
        since = seen.updated_at
        if seen.status is SubmissionStatus.RUNNING and seen.started_at is not None:
            since = seen.started_at
        error = f"stuck {seen.status.value} since {since:%Y-%m-%dT%H:%M:%SZ} after {tries} attempts"
        stored, written = current.store.complete(
            seen.model_copy(),
            Verdict(status=VerdictStatus.SANDBOX_ERROR, reason=STUCK_REASON),
            failed=True,
            error=error if environment else f"{error}; no environment to queue it on",
            webhook=True,
            only_if=unchanged,
            count="sweep_failures",
        )
        if written:
            bound.warning("stuck_submission_failed", error=stored.error)
            done.failed.append(seen.id)
            if stored.verdict is not None:
                with suppress(GraderError):  # our failure: the learner's attempt goes back
                    current.store.sessions.settle(stored, stored.verdict)
            if stored.callback_url:
                with suppress(GraderError):  # else a later sweep queues it from the outbox
                    queue_webhook(current, seen.id)
        return

    def requeued(stored: Submission) -> Submission | None:
        if not unchanged(stored):
            return None
        return stored.model_copy(update={"status": SubmissionStatus.QUEUED, "attempts": tries})

    _, written = current.store.update(seen.id, requeued, count="sweep_requeues", unsent=True)
    if written:  # ours alone: enqueue it (if this fails, a sweep sends it from the outbox)
        current.queue.enqueue_run(seen.id, environment)
        with suppress(GraderError):  # else a pickup, or a duplicate that grades nothing, does
            current.store.run_queued(seen.id)
        bound.warning("stuck_submission_requeued", environment=environment)
        done.requeued.append(seen.id)
