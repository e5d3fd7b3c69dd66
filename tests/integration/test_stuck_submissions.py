"""No submission is ever stuck: a real worker's sweeper finds what no task will finish."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from grader.adapters.store import SubmissionStore, new_id
from grader.api.app import create_app
from grader.domain.submission import Submission, SubmissionStatus, now
from grader.domain.verdict import VerdictStatus
from grader.testing import RedisServer, WorkerProcess, service_settings
from tests.conftest import OLD_ENV
from worker.sweeper import STUCK_REASON

pytestmark = pytest.mark.docker

Q4 = "async-test-mastery/q4-counter-after-test"
CODE = yaml.safe_load(
    (
        Path(__file__).resolve().parents[2]
        / "challenges"
        / "async-test-mastery"
        / "q4-counter-after-test.yaml"
    ).read_text()
)["code"]
GONE = "gone-host:1"
"""A worker process with no heartbeat: it was SIGKILLed an hour ago."""


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, built_environments: list[str]
) -> Iterator[tuple[RedisServer, WorkerProcess]]:
    """A redis-server and a worker of this module's own (sweeps act on everything there)."""
    folder = tmp_path_factory.mktemp("stuck")
    server = RedisServer(folder)
    server.start()
    worker = WorkerProcess(server.url, folder / "worker.log", pool_size=0)
    worker.start()
    yield server, worker
    worker.stop()
    server.stop(graceful=False)


@pytest.fixture
def store(services: tuple[RedisServer, WorkerProcess]) -> Iterator[SubmissionStore]:
    created = SubmissionStore.from_url(services[0].url, 3600)
    yield created
    created.close()


def stuck_running(store: SubmissionStore, *, attempts: int) -> str:
    """A Q4 submission left running an hour ago by a worker that is gone, with no task."""
    submission = Submission(
        id=new_id(), key_id="platform", challenge_id=Q4, environment=OLD_ENV, code=CODE
    )
    store.create(submission)
    an_hour_ago = now() - timedelta(hours=1)

    def left_running(stored: Submission) -> Submission:
        return stored.model_copy(
            update={
                "status": SubmissionStatus.RUNNING,
                "started_at": an_hour_ago,
                "attempts": attempts,
            }
        )

    store.update(submission.id, left_running, worker=GONE)
    return submission.id


def final(store: SubmissionStore, submission_id: str, timeout: float) -> Submission:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = store.get(submission_id)
        if found is not None and found.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED):
            return found
        time.sleep(0.2)
    raise AssertionError(f"{submission_id} not final after {timeout}s: {store.get(submission_id)}")


def test_a_stuck_running_submission_is_requeued_and_graded(
    store: SubmissionStore, services: tuple[RedisServer, WorkerProcess]
) -> None:
    """Running for an hour in a dead worker, with no task anywhere: a sweep re-queues it and
    the worker grades it, as a second attempt."""
    submission_id = stuck_running(store, attempts=1)
    done = final(store, submission_id, 120)
    assert done.verdict is not None
    assert (done.status, done.verdict.status) == (SubmissionStatus.DONE, VerdictStatus.PASSED)
    assert done.attempts == 2, services[1].tail()


def test_a_stuck_submission_past_its_retry_budget_ends_failed(
    store: SubmissionStore, services: tuple[RedisServer, WorkerProcess]
) -> None:
    """Stuck after its last attempt (1 + max_retries): a sweep ends it failed, sandbox_error,
    never blaming the learner, and runs nothing more."""
    submission_id = stuck_running(store, attempts=4)
    failed = final(store, submission_id, 120)
    assert failed.verdict is not None
    assert (failed.status, failed.verdict.status) == (
        SubmissionStatus.FAILED,
        VerdictStatus.SANDBOX_ERROR,
    )
    assert failed.verdict.reason == STUCK_REASON
    assert failed.error is not None and failed.error.endswith("after 4 attempts")
    assert failed.attempts == 4


@pytest.mark.asyncio
async def test_sweeps_are_counted_in_the_metrics(
    store: SubmissionStore, services: tuple[RedisServer, WorkerProcess]
) -> None:
    """/metrics shows the sweeps and what they re-queued and ended, as the store counted."""
    stats, _ = store.stats()
    app = create_app(service_settings(services[0].url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://grader"
    ) as client:
        response = await client.get("/metrics")
    await app.state.grader.completions.close()
    app.state.grader.store.client.close()
    metrics = dict(
        line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#")
    )
    assert float(metrics["grader_sweeps_total"]) >= stats["sweeps"] >= 1  # workers keep sweeping
    for name in ("sweep_requeues", "sweep_failures"):
        assert float(metrics[f"grader_{name}_total"]) == stats.get(name, 0.0)
