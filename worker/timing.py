"""Time budgets of a grading task, and the deadlines the sweeper derives from them.

One place for the numbers, so Celery's time limits and the sweeper's idea of "stuck" cannot
drift apart. Module constants until they become settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.settings import Settings

READY_SECONDS = 30
"""The time a cold container may take to become ready."""
OVERHEAD_SECONDS = 30
"""Room for Docker itself (create, attach, remove) around a run."""
FINISH_SECONDS = 120.0
"""How long storing a result is retried (a Redis restart) before the task is retried."""
FINISH_BACKOFF_MAX_SECONDS = 8.0
SOFT_MARGIN_SECONDS = 10
"""The soft time limit (an exception in the task) comes this long before grading's budget
ends; the hard one (SIGKILL) this long after the finishing budget."""
HEARTBEAT_SECONDS = 10
HEARTBEAT_TTL_SECONDS = 3 * HEARTBEAT_SECONDS
"""A worker process whose heartbeat is this old is gone."""
SWEEP_SECONDS = 10.0
"""How often each worker process sweeps (with jitter)."""
STALE_MARGIN_SECONDS = 30
"""Past a deadline, how long the sweeper still waits before it calls a submission stuck."""


@dataclass(frozen=True)
class Budget:
    """The time limits of one grading task and when the sweeper calls a submission stuck."""

    run: int
    """Grading: the longest allowed run, a cold start, the harness grace, Docker itself."""
    hard: int
    """Celery's hard time limit: grading, then storing the result through a Redis restart."""
    soft: int
    """Celery's soft time limit: interrupts a grading that hangs (storing the result goes on
    past it: ``finishing`` takes the interrupt as one more failed try)."""
    running_stale: float
    """An attempt whose worker is alive, started this long ago, is stuck: past the hard limit
    (the task is over, one way or another) and a retry's countdown."""
    queued_stale: float
    """A queued submission is stuck after this long: Celery would have redelivered a task
    whose worker died holding it by then (the visibility timeout), and run it."""
    orphaned: float = HEARTBEAT_TTL_SECONDS
    """A running attempt of a worker process without a heartbeat, started this long ago
    (so the process had time to write its first beat), is stuck."""


def budget(settings: Settings) -> Budget:
    run = int(
        settings.sandbox.maxima.wall_seconds
        + READY_SECONDS
        + settings.sandbox.harness_grace_seconds
        + OVERHEAD_SECONDS
    )
    # The finishing budget starts when grading ends, at the soft limit at the latest.
    hard = int(run + FINISH_SECONDS + SOFT_MARGIN_SECONDS)
    running = hard + settings.queue.retry_backoff_max_seconds + STALE_MARGIN_SECONDS
    queued = settings.queue.visibility_timeout_seconds + hard + STALE_MARGIN_SECONDS
    return Budget(
        run=run,
        hard=hard,
        soft=run - SOFT_MARGIN_SECONDS,
        running_stale=running,
        queued_stale=queued,
    )
