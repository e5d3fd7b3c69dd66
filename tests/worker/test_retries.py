"""Celery's own retry (``autoretry_for``, ``retry_backoff``, ``retry_jitter``) on our tasks,
bound to a Celery app of the test's own (no broker: ``retry`` is caught before it sends)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

import worker.tasks
from grader.constants import TASK_DELIVER_WEBHOOK, TASK_RUN_SUBMISSION
from grader.errors import HarnessProtocolError, StoreError, WebhookUndelivered
from grader.settings import get_settings


class Retrying(Exception):
    """What the stand-in for ``Task.retry`` raises, with the arguments Celery gave it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kwargs)
        self.kwargs = kwargs


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    assert worker.tasks.run_submission is not None  # the shared tasks are registered
    yield Celery("retry-test", set_as_current=False)


def retried(task: Any, error: Exception, retries: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``task`` whose body raises ``error`` on try ``retries``: what it asked Celery."""

    def body(*_: Any, **__: Any) -> None:
        raise error

    def retry(**kwargs: Any) -> Exception:
        return Retrying(**kwargs)

    monkeypatch.setattr(task, "_orig_run", body)
    monkeypatch.setattr(task, "retry", retry)
    task.push_request(retries=retries)
    try:
        with pytest.raises(Retrying) as asked:
            task.run({"v": 1, "submission_id": "x"})
    finally:
        task.pop_request()
    return asked.value.kwargs


def test_grading_retries_infrastructure_errors_with_capped_jittered_backoff(
    app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GraderError leaving the grading task is retried by Celery with the error, and a
    countdown drawn from 0 to min(2**retries, the configured cap)."""
    task = app.tasks[TASK_RUN_SUBMISSION]
    cap = get_settings().queue.retry_backoff_max_seconds
    assert (task.retry_backoff, task.retry_jitter) == (True, True)
    assert task.max_retries == get_settings().queue.max_retries
    for retries in range(8):
        error = HarnessProtocolError("no report from the harness")
        asked = retried(task, error, retries, monkeypatch)
        assert asked["exc"] is error
        assert 0 <= asked["countdown"] <= min(2**retries, cap)


def test_grading_never_retries_other_exceptions(
    app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception that is not ours (a bug) propagates: Celery does not retry it."""
    task = app.tasks[TASK_RUN_SUBMISSION]
    monkeypatch.setattr(task, "_orig_run", lambda *_: (_ for _ in ()).throw(KeyError("bug")))
    with pytest.raises(KeyError):
        task.run({"v": 1, "submission_id": "x"})


@pytest.mark.parametrize(
    "error", [StoreError("redis down"), WebhookUndelivered("https://x.example/: HTTP 503")]
)
def test_webhook_delivery_retries_with_backoff_up_to_a_minute(
    app: Celery, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """A store outage or a 5xx/429 answer is retried by Celery, at most a minute apart."""
    task = app.tasks[TASK_DELIVER_WEBHOOK]
    assert task.max_retries == get_settings().api.webhook_max_attempts
    for retries in (0, 3, 10):
        asked = retried(task, error, retries, monkeypatch)
        assert asked["exc"] is error
        assert 0 <= asked["countdown"] <= min(2**retries, 60)
