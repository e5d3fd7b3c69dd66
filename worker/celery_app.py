"""The Celery app of the worker. Entry point: ``celery -A worker.celery_app worker``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown
from kombu.entity import Queue

from grader.adapters.queue import celery_config, queue_for
from grader.constants import QUEUE_WEBHOOKS
from grader.domain.environment import discover
from grader.settings import get_settings

from .logging_config import configure as configure_logging
from .runtime import runtime, shutdown_runtime
from .timing import budget


def make_app() -> Celery:
    settings = get_settings()
    environments = settings.queue.environments or list(discover(settings.images.root))
    # Derived from the sandbox limits, with room to store a result through a Redis restart.
    limits = budget(settings)
    app = Celery("grader-worker", include=["worker.tasks", "worker.bank_tasks"])
    app.conf.update(celery_config(settings))
    app.conf.update(
        task_queues=[Queue(queue_for(env)) for env in environments] + [Queue(QUEUE_WEBHOOKS)],
        task_time_limit=limits.hard,
        task_soft_time_limit=limits.soft,
        worker_concurrency=settings.queue.concurrency,
        worker_send_task_events=False,
    )
    return app


configure_logging()
app = make_app()


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    """Each pool process gets its own sandbox, warm pool and reaper after the fork."""
    runtime()


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    shutdown_runtime()
