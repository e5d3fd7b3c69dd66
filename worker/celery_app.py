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

# Task time limits derived from the sandbox limits: the longest allowed run, the time a cold
# container may take to become ready, the harness grace, and room for Docker itself.
_READY_SECONDS = 30
_OVERHEAD_SECONDS = 30


def make_app() -> Celery:
    settings = get_settings()
    environments = settings.queue.environments or list(discover(settings.images.root))
    hard = int(
        settings.sandbox.maxima.wall_seconds
        + _READY_SECONDS
        + settings.sandbox.harness_grace_seconds
        + _OVERHEAD_SECONDS
    )
    app = Celery("grader-worker", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    app.conf.update(
        task_queues=[Queue(queue_for(env)) for env in environments] + [Queue(QUEUE_WEBHOOKS)],
        task_time_limit=hard,
        task_soft_time_limit=hard - 10,
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
