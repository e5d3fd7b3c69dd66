"""The Celery app of the worker. Entry point: ``celery -A worker.celery_app worker``."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, Task
from celery.signals import (
    celeryd_init,
    setup_logging,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)
from kombu.entity import Queue

from grader import logs
from grader.adapters.queue import celery_config, queue_for
from grader.constants import QUEUE_WEBHOOKS
from grader.domain.environment import discover
from grader.settings import get_settings

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


app = make_app()


@celeryd_init.connect  # the worker program's first step, before it warns of running as root
@setup_logging.connect  # a receiver here means Celery leaves logging to us
def _configure_logging(**_: Any) -> None:
    """Replaces Celery's own set-up: its lines, ours and the libraries' all as JSON lines."""
    settings = get_settings()
    logs.configure(settings.log.level, settings.log.format)


@task_prerun.connect
def _bind_task(task_id: str, task: Task, **_: Any) -> None:
    """Each task's lines carry its id and name; a task binds its submission on top."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name)


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    """Each pool process gets its own sandbox, warm pool and reaper after the fork."""
    runtime()


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    shutdown_runtime()
