"""An accepted submission is never lost, nor stuck: not on a worker SIGKILL, not on a Redis
restart, not on a Redis restart while its result is being stored."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import httpx
import pytest
import pytest_asyncio
import yaml

from grader.adapters.store import SubmissionStore
from grader.api.app import create_app
from grader.domain.submission import SubmissionStatus
from grader.testing import SUBMITTER_KEY, RedisServer, WorkerProcess, service_settings

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
SLOW_CODE = "import time\ntime.sleep(3)\n" + CODE  # still correct, just slow to run


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, so no other worker takes its tasks."""
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop(graceful=False)


@pytest_asyncio.fixture
async def own_api(own_redis: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service_settings(own_redis.url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://grader"
    ) as client:
        yield client
    await app.state.grader.completions.close()
    app.state.grader.store.client.close()


def wait_for(
    store: SubmissionStore, ids: list[str], statuses: set[SubmissionStatus], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [store.get(i) for i in ids]
        if all(s is not None and s.status in statuses for s in found):
            return
        time.sleep(0.2)
    raise AssertionError(f"not {statuses} after {timeout}s: {[store.get(i) for i in ids]}")


def remove_exited_sandboxes() -> None:
    """The killed worker could not remove its container; clean it like the reaper would."""
    client = docker.from_env()
    for container in client.containers.list(
        all=True, filters={"label": "org.grader.role=sandbox", "status": "exited"}
    ):
        container.remove(force=True)


@pytest.mark.asyncio
async def test_worker_sigkill_mid_run_then_another_worker_completes_it(
    own_api: httpx.AsyncClient,
    own_redis: RedisServer,
    tmp_path: Path,
    built_environments: list[str],
) -> None:
    """SIGKILL the worker while it runs a submission: a second worker grades it."""
    first = WorkerProcess(
        own_redis.url, tmp_path / "first.log", name="first", pool_size=0, visibility=8
    )
    second = WorkerProcess(
        own_redis.url, tmp_path / "second.log", name="second", pool_size=0, visibility=8
    )
    store = SubmissionStore.from_url(own_redis.url, 3600)
    first.start()
    try:
        created = await own_api.post(
            "/v1/submissions", headers=AUTH, json={"challenge_id": Q4, "code": SLOW_CODE}
        )
        submission_id = created.json()["id"]
        wait_for(store, [submission_id], {SubmissionStatus.RUNNING}, 60)
        first.kill()
        assert store.get(submission_id).status is SubmissionStatus.RUNNING  # type: ignore[union-attr]
        second.start()
        wait_for(store, [submission_id], {SubmissionStatus.DONE}, 90)
        done = store.get(submission_id)
        assert done is not None and done.verdict is not None
        assert done.verdict.status.value == "passed", second.tail()
        assert done.attempts == 2
    finally:
        first.kill()
        second.stop()
        store.client.close()
        remove_exited_sandboxes()


@pytest.mark.asyncio
async def test_redis_restart_with_queued_submissions_loses_nothing(
    own_api: httpx.AsyncClient,
    own_redis: RedisServer,
    tmp_path: Path,
    built_environments: list[str],
) -> None:
    """Queue submissions with no worker, SIGKILL and restart Redis (AOF): all complete."""
    ids = []
    for _ in range(3):
        response = await own_api.post(
            "/v1/submissions", headers=AUTH, json={"challenge_id": Q4, "code": CODE}
        )
        assert response.status_code == 202
        ids.append(response.json()["id"])
    own_redis.stop(graceful=False)  # SIGKILL: only the append-only file survives
    own_redis.start()
    store = SubmissionStore.from_url(own_redis.url, 3600)
    assert all(store.get(i).status is SubmissionStatus.QUEUED for i in ids)  # type: ignore[union-attr]
    worker = WorkerProcess(own_redis.url, tmp_path / "worker.log", pool_size=1)
    worker.start()
    try:
        wait_for(store, ids, {SubmissionStatus.DONE}, 120)
        verdicts = [store.get(i).verdict.status.value for i in ids]  # type: ignore[union-attr]
        assert verdicts == ["passed"] * 3, worker.tail()
        response = await own_api.get(f"/v1/submissions/{ids[0]}", headers=AUTH)
        assert response.json()["result"]["status"] == "passed"
    finally:
        worker.stop()
        store.client.close()


def wait_for_log(worker: WorkerProcess, event: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f'"event": "{event}"' in worker.tail(400):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {event} in the worker's log after {timeout}s:\n{worker.tail()}")


@pytest.mark.asyncio
async def test_redis_sigkill_while_a_result_is_stored_loses_nothing(
    own_api: httpx.AsyncClient,
    own_redis: RedisServer,
    tmp_path: Path,
    built_environments: list[str],
) -> None:
    """SIGKILL Redis while the worker runs a submission and keep it down until storing the
    result has failed; once it is back, the result is stored, once, at the first attempt."""
    worker = WorkerProcess(own_redis.url, tmp_path / "worker.log", pool_size=0)
    worker.start()
    store = SubmissionStore.from_url(own_redis.url, 3600)
    try:
        created = await own_api.post(
            "/v1/submissions", headers=AUTH, json={"challenge_id": Q4, "code": SLOW_CODE}
        )
        submission_id = created.json()["id"]
        wait_for(store, [submission_id], {SubmissionStatus.RUNNING}, 60)
        own_redis.stop(graceful=False)
        wait_for_log(worker, "finish_retry", 60)
        own_redis.start()
        wait_for(store, [submission_id], {SubmissionStatus.DONE}, 120)
        done = store.get(submission_id)
        assert done is not None and done.verdict is not None
        assert done.verdict.status.value == "passed", worker.tail()
        assert done.attempts == 1
        assert store.stats()[0]["verdict:passed"] == 1
    finally:
        worker.stop()
        store.client.close()


@pytest.mark.asyncio
async def test_a_sigkilled_workers_submission_is_requeued_by_a_sweep(
    own_api: httpx.AsyncClient,
    own_redis: RedisServer,
    tmp_path: Path,
    built_environments: list[str],
) -> None:
    """With the default 300 s visibility timeout, a submission whose worker was SIGKILLed is
    re-queued by another worker's sweeper once the dead process's heartbeat has expired, and
    graded, long before Celery would redeliver it."""
    first = WorkerProcess(own_redis.url, tmp_path / "first.log", name="first", pool_size=0)
    second = WorkerProcess(own_redis.url, tmp_path / "second.log", name="second", pool_size=0)
    store = SubmissionStore.from_url(own_redis.url, 3600)
    first.start()
    try:
        created = await own_api.post(
            "/v1/submissions", headers=AUTH, json={"challenge_id": Q4, "code": SLOW_CODE}
        )
        submission_id = created.json()["id"]
        wait_for(store, [submission_id], {SubmissionStatus.RUNNING}, 60)
        first.kill()
        second.start()
        wait_for(store, [submission_id], {SubmissionStatus.DONE}, 150)
        done = store.get(submission_id)
        assert done is not None and done.verdict is not None
        assert done.verdict.status.value == "passed", second.tail()
        assert done.attempts == 2
        assert store.stats()[0]["sweep_requeues"] == 1
    finally:
        first.kill()
        second.stop()
        store.client.close()
        remove_exited_sandboxes()
