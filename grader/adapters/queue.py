"""Sending work to the workers: Celery tasks by name, JSON only, a queue per environment."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.exceptions import KombuError

from ..constants import (
    QUEUE_PREFIX,
    QUEUE_WEBHOOKS,
    TASK_DELIVER_WEBHOOK,
    TASK_PAYLOAD_VERSION,
    TASK_REGRADE_CHALLENGE,
    TASK_RUN_SUBMISSION,
    TASK_VALIDATE_CHALLENGE,
)
from ..errors import QueueError
from ..settings import Settings


def queue_for(environment: str) -> str:
    return f"{QUEUE_PREFIX}{environment}"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Configuration shared by the API's client and the worker's app."""
    return {
        "broker_url": settings.redis.url,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": QUEUE_WEBHOOKS,
        "broker_transport_options": {
            # A task whose worker died unacknowledged is redelivered after this long; the
            # sweep for such tasks runs often enough for that to actually happen.
            "visibility_timeout": settings.queue.visibility_timeout_seconds,
            "unacked_restore_interval": max(
                1, min(10, settings.queue.visibility_timeout_seconds // 4)
            ),
            "unacked_restore_throttle": 1,
        },
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
    }


class TaskQueue:
    """The API's handle on the broker."""

    def __init__(self, settings: Settings) -> None:
        self._app = Celery("grader-api")
        self._app.conf.update(celery_config(settings))

    def enqueue_run(self, submission_id: str, environment: str) -> None:
        self._send(TASK_RUN_SUBMISSION, submission_id, queue_for(environment))

    def enqueue_webhook(self, submission_id: str) -> None:
        self._send(TASK_DELIVER_WEBHOOK, submission_id, QUEUE_WEBHOOKS)

    def enqueue_validation(self, revision: str, environment: str) -> None:
        """Validate a challenge revision by execution, on a worker of its environment."""
        self._send(TASK_VALIDATE_CHALLENGE, revision, queue_for(environment), field="revision")

    def enqueue_regrade(self, job_id: str, environment: str) -> None:
        self._send(TASK_REGRADE_CHALLENGE, job_id, queue_for(environment), field="job")

    def _send(self, name: str, ident: str, queue: str, field: str = "submission_id") -> None:
        payload = {"v": TASK_PAYLOAD_VERSION, field: ident}
        try:
            self._app.send_task(name, args=[payload], queue=queue)
        except (KombuError, OSError) as exc:
            raise QueueError(f"cannot queue {name}: {exc}") from None

    def workers(self, timeout: float = 1.0) -> list[str]:
        """Names of workers that answered a ping."""
        try:
            replies = self._app.control.ping(timeout=timeout) or []
        except (KombuError, OSError):
            return []
        return sorted(name for reply in replies for name in reply)
