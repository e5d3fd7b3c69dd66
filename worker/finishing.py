"""Finishing a submission: record it in the learner's session (and any badge it earns), store
its result, announce it, queue its webhook — through a Redis restart.

A result is what a run cost; losing it to a Redis blip would waste the run and leave the
submission ``running``. So storing is retried with backoff for ``FINISH_SECONDS`` before the
caller has the task retried. Storing is conditional on the stored record
(``store.complete``): a repeat after a write whose reply was lost, or a second attempt's
result, writes and counts nothing. The webhook is stored in the store's outbox together with
the result and queued from there at once, or later by a sweeper if this process dies or the
broker is down meanwhile (at least once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential,
)

from grader.domain.submission import Submission
from grader.domain.verdict import Verdict
from grader.errors import QueueError, StoreError

from . import timing

if TYPE_CHECKING:
    from .runtime import Runtime

log = structlog.get_logger(__name__)
T = TypeVar("T")
FIRST_DELAY_SECONDS = 0.25


def finish(
    current: Runtime,
    submission: Submission,
    verdict: Verdict,
    *,
    failed: bool = False,
    error: str | None = None,
    packages: dict[str, str] | None = None,
) -> StoreError | None:
    """Store, announce and queue the webhook of a result; the error if it could not be stored
    within ``FINISH_SECONDS`` (the caller then has the task retried)."""
    bound = log.bind(submission_id=submission.id)
    deadline = time.monotonic() + timing.FINISH_SECONDS
    try:
        # The learner's session first (once per submission), so a badge this pass earns is
        # stored and announced with the result (its webhook carries it).
        submission.badge = _retried(
            deadline, lambda: current.store.sessions.settle(submission, verdict)
        )
        stored, written = _retried(
            deadline,
            lambda: current.store.complete(
                submission, verdict, failed=failed, error=error, packages=packages, webhook=True
            ),
        )
    except StoreError as exc:
        bound.error("result_not_stored", error=str(exc)[:300], budget=timing.FINISH_SECONDS)
        return exc
    if not written:
        bound.info("result_already_stored", status=stored.status.value)
    elif stored.callback_url:
        try:
            _retried(deadline, lambda: current.queue.enqueue_webhook(stored.id))
            _retried(deadline, lambda: current.store.webhook_queued(stored.id))
        except (QueueError, StoreError) as exc:
            bound.warning("webhook_left_in_outbox", error=str(exc)[:300])
    return None


def queue_webhook(current: Runtime, submission_id: str) -> None:
    """Queue the webhook of a stored result, then take it out of the outbox."""
    current.queue.enqueue_webhook(submission_id)
    current.store.webhook_queued(submission_id)


def _retried(deadline: float, action: Callable[[], T]) -> T:
    """``action()``, retried by tenacity with doubling delays while Redis or the broker
    fails, until ``deadline`` (monotonic); then its last error.

    The task's soft time limit may strike here (it is set for grading, and storing may go on
    past it): that interrupt is one more failed try, since every action here may be repeated.
    """
    retrying = Retrying(
        retry=retry_if_exception_type((StoreError, QueueError, SoftTimeLimitExceeded)),
        wait=wait_exponential(
            multiplier=FIRST_DELAY_SECONDS, max=timing.FINISH_BACKOFF_MAX_SECONDS
        ),
        stop=stop_before_delay(max(0.0, deadline - time.monotonic())),
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(action)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, SoftTimeLimitExceeded):
        log.warning("finish_past_soft_time_limit")
    else:
        delay = state.next_action.sleep if state.next_action is not None else None
        log.warning("finish_retry", error=str(error)[:300], in_seconds=delay)
