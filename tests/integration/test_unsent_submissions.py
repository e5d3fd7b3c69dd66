"""A submission stored but never sent (Redis or the API died between the two) is graded
without waiting for the sweeper's queued deadline; a task sent twice grades it once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI

from grader.adapters.queue import TaskQueue, queue_for
from grader.adapters.store import SubmissionStore
from grader.api.app import create_app
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import VerdictStatus
from grader.errors import QueueError
from grader.testing import SUBMITTER_KEY, RedisServer, WorkerProcess, service_settings
from tests.conftest import OLD_ENV

pytestmark = pytest.mark.docker

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
Q4 = "async-test-mastery/q4-counter-after-test"
CODE = yaml.safe_load(
    (
        Path(__file__).resolve().parents[2]
        / "challenges"
        / "async-test-mastery"
        / "q4-counter-after-test.yaml"
    ).read_text()
)["code"]
NEVER = {"GRADER_QUEUE__UNSENT_AFTER_SECONDS": "86400"}
"""A worker whose sweeps never send an unsent submission: only a replay can."""
SOON = {"GRADER_QUEUE__UNSENT_AFTER_SECONDS": "2"}
"""A worker whose sweeps send an unsent submission two seconds after it was stored."""
GRADED_WITHIN = 120.0
"""Far below the sweeper's queued deadline (552 s): a submission graded within this was not
rescued by it."""


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, so no other worker takes its tasks."""
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop(graceful=False)


@pytest_asyncio.fixture
async def own_app(own_redis: RedisServer) -> AsyncIterator[FastAPI]:
    app = create_app(service_settings(own_redis.url))
    yield app
    await app.state.grader.completions.close()
    app.state.grader.store.client.close()


@pytest.fixture
def store(own_redis: RedisServer) -> Iterator[SubmissionStore]:
    opened = SubmissionStore.from_url(own_redis.url, 3600)
    yield opened
    opened.close()


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://grader")


def graded(store: SubmissionStore, submission_id: str, worker: WorkerProcess) -> Submission:
    deadline = time.monotonic() + GRADED_WITHIN
    while time.monotonic() < deadline:
        found = store.get(submission_id)
        if found is not None and found.status in (SubmissionStatus.DONE, SubmissionStatus.FAILED):
            return found
        time.sleep(0.2)
    raise AssertionError(
        f"{submission_id} not graded after {GRADED_WITHIN}s: {store.get(submission_id)}\n"
        f"{worker.tail()}"
    )


def tasks_finished(worker: WorkerProcess, count: int) -> None:
    """Wait until the worker has finished ``count`` run tasks, by its own log lines."""
    deadline = time.monotonic() + GRADED_WITHIN
    while time.monotonic() < deadline:
        lines = worker.log_path.read_text(errors="replace").splitlines()
        finished = [x for x in lines if "Task grader.run_submission[" in x and "succeeded" in x]
        if len(finished) >= count:
            assert len(finished) == count, worker.tail()
            return
        time.sleep(0.2)
    raise AssertionError(f"not {count} run tasks finished:\n{worker.tail()}")


@pytest.mark.asyncio
async def test_redis_killed_between_storing_and_sending_then_the_replay_gets_it_graded(
    own_app: FastAPI,
    own_redis: RedisServer,
    store: SubmissionStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    built_environments: list[str],
) -> None:
    """Redis is SIGKILLed after the API stored the submission and before it sent the task:
    503. Redis comes back; the client's retry with the same Idempotency-Key is answered with
    the stored submission and sends its task, so it is graded at its first attempt, without
    any sweep (this worker's sweeps never send an unsent one)."""
    worker = WorkerProcess(own_redis.url, tmp_path / "worker.log", pool_size=0, env=NEVER)
    worker.start()
    queue = own_app.state.grader.queue
    send = queue.enqueue_run
    kills: list[str] = []

    def redis_dies_first(submission_id: str, environment: str) -> None:
        if not kills:
            kills.append(submission_id)
            own_redis.stop(graceful=False)  # SIGKILL: only the append-only file survives
        send(submission_id, environment)

    monkeypatch.setattr(queue, "enqueue_run", redis_dies_first)
    headers = {**AUTH, "Idempotency-Key": "redis-died-in-between"}
    body = {"challenge_id": Q4, "code": CODE}
    try:
        async with client_of(own_app) as client:
            refused = await client.post("/v1/submissions", headers=headers, json=body)
            own_redis.start()
            replayed = await client.post("/v1/submissions", headers=headers, json=body)
        assert refused.status_code == 503
        assert (replayed.status_code, replayed.json()["status"]) == (200, "queued")
        assert [replayed.json()["id"]] == kills
        done = graded(store, kills[0], worker)
        assert done.verdict is not None
        assert (done.status, done.verdict.status) == (SubmissionStatus.DONE, VerdictStatus.PASSED)
        assert done.attempts == 1
        stats, _ = store.stats()
        assert (stats["verdict:passed"], stats.get("sweep_requeues", 0)) == (1, 0)
    finally:
        worker.stop()


@pytest.mark.asyncio
async def test_a_submission_never_sent_nor_retried_is_sent_by_a_sweep_after_the_margin(
    own_app: FastAPI,
    own_redis: RedisServer,
    store: SubmissionStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    built_environments: list[str],
) -> None:
    """The send fails after the store and the client never retries (as if the API process
    had died in between): a worker's sweep sends the task once the short margin has passed,
    counted as a re-queue and not as an attempt, and it is graded."""

    def refuse(submission_id: str, environment: str) -> None:
        raise QueueError("cannot queue grader.run_submission: Error 111 connecting to redis")

    monkeypatch.setattr(own_app.state.grader.queue, "enqueue_run", refuse)
    async with client_of(own_app) as client:
        refused = await client.post(
            "/v1/submissions", headers=AUTH, json={"challenge_id": Q4, "code": CODE}
        )
    assert refused.status_code == 503
    keys = [k.decode() if isinstance(k, bytes) else k for k in store.client.keys("grader:sub:*")]
    (submission_id,) = [k.rsplit(":", 1)[1] for k in keys]
    assert store.run_unsent(submission_id) is True
    worker = WorkerProcess(own_redis.url, tmp_path / "worker.log", pool_size=0, env=SOON)
    worker.start()
    try:
        done = graded(store, submission_id, worker)
        assert done.verdict is not None
        assert (done.status, done.verdict.status) == (SubmissionStatus.DONE, VerdictStatus.PASSED)
        assert done.attempts == 1
        stats, _ = store.stats()
        assert (stats["verdict:passed"], stats["sweep_requeues"]) == (1, 1)
        assert '"event": "unsent_submission_sent"' in worker.tail(400)
    finally:
        worker.stop()


@pytest.mark.asyncio
async def test_a_task_sent_twice_grades_once_and_a_late_one_changes_nothing(
    own_app: FastAPI,
    own_redis: RedisServer,
    store: SubmissionStore,
    tmp_path: Path,
    built_environments: list[str],
) -> None:
    """The API sent the task and a second one for the same submission is in the queue too (a
    replay or a sweep that raced the send): the worker grades it at one attempt, stores and
    counts one verdict; a third task after the verdict runs nothing and changes nothing."""
    async with client_of(own_app) as client:
        created = await client.post(
            "/v1/submissions", headers=AUTH, json={"challenge_id": Q4, "code": CODE}
        )
    submission_id = created.json()["id"]
    duplicates = TaskQueue(service_settings(own_redis.url))
    duplicates.enqueue_run(submission_id, OLD_ENV)
    assert store.client.llen(queue_for(OLD_ENV)) == 2
    worker = WorkerProcess(own_redis.url, tmp_path / "worker.log", pool_size=0, env=NEVER)
    worker.start()
    try:
        done = graded(store, submission_id, worker)
        tasks_finished(worker, 2)
        assert store.client.llen(queue_for(OLD_ENV)) == 0
        assert store.get(submission_id) == done
        assert done.verdict is not None
        assert (done.status, done.verdict.status) == (SubmissionStatus.DONE, VerdictStatus.PASSED)
        assert done.attempts == 1
        assert store.stats()[0]["verdict:passed"] == 1
        duplicates.enqueue_run(submission_id, OLD_ENV)
        tasks_finished(worker, 3)
        assert store.get(submission_id) == done
        assert store.stats()[0]["verdict:passed"] == 1
    finally:
        worker.stop()
