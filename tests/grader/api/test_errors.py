"""Every error is JSON in one shape: the framework's, unexpected ones, and Redis being down."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from grader.adapters.queue import queue_for
from grader.api.app import create_app
from grader.api.errors import INTERNAL, UNAVAILABLE
from grader.errors import QueueError
from grader.testing import SUBMITTER_KEY, free_port, service_settings
from tests.worker.support import queued_ids

from .conftest import Q4_ENVIRONMENT, client_for

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
Q4 = "async-test-mastery/q4-counter-after-test"
DOWN = {"error": {"code": "unavailable", "message": UNAVAILABLE}}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/submissions", "POST"),
        ("PUT", "/v1/sets/async-test-mastery/progress", "GET"),
        ("PUT", "/v1/submissions/abc", "GET"),
        ("POST", "/v1/environments", "GET"),
        ("PATCH", "/v1/submissions/batch", "POST"),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    api: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    """405 names the methods the path takes in Allow, with our JSON error body."""
    response = await api.request(method, path, headers=SUBMITTER)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {
        "error": {"code": "method_not_allowed", "message": "Method Not Allowed"}
    }


@pytest.mark.asyncio
async def test_an_unknown_path_is_404_json(api: httpx.AsyncClient) -> None:
    """No such route: 404 with code not_found, like an unknown submission."""
    response = await api.get("/v2/anything", headers=SUBMITTER)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}


@pytest.mark.asyncio
async def test_an_unexpected_exception_is_a_500_json_that_names_nothing_inside(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug answers 500 in our error shape; its text (here a host) stays in the log."""

    def broken(submission_id: str) -> None:
        raise RuntimeError("boom at redis:6379")

    monkeypatch.setattr(app.state.grader.store, "get", broken)
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/v1/submissions/abc", headers=SUBMITTER)
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": INTERNAL}}


@pytest.fixture
def redis_nowhere() -> Iterator[FastAPI]:
    """The app pointed at a port where nothing listens."""
    app = create_app(service_settings(f"redis://127.0.0.1:{free_port()}/0"))
    yield app
    app.state.grader.store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/submissions", {"challenge_id": Q4, "code": "x = 1\n"}),
        ("POST", "/v1/submissions/batch", {"submissions": [{"challenge_id": Q4, "code": "x"}]}),
        ("GET", "/v1/submissions/abc", None),
        ("GET", "/v1/environments", None),
    ],
)
async def test_redis_down_is_a_quick_503_that_names_no_host(
    redis_nowhere: FastAPI, method: str, path: str, body: object
) -> None:
    """Without Redis each request answers 503 at once, naming neither host nor port, and
    asks the client to retry after 2 s."""
    async with client_for(redis_nowhere) as client:
        started = time.monotonic()
        response = await client.request(method, path, headers=SUBMITTER, json=body)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == DOWN
    assert response.headers["Retry-After"] == "2"
    assert elapsed < 3  # the point: not seconds of connect timeout per request


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A port whose connections are never accepted: the kernel drops the handshake.

    Like a Redis host that went away behind a firewall or a paused container; connecting
    waits for the client's connect timeout instead of being refused at once.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    backlog = []
    for _ in range(3):  # fill the accept queue so later handshakes get no answer
        waiting = socket.socket()
        waiting.setblocking(False)
        waiting.connect_ex(("127.0.0.1", port))
        backlog.append(waiting)
    yield port
    for waiting in backlog:
        waiting.close()
    listener.close()


@pytest.mark.asyncio
async def test_an_unresponsive_redis_is_a_503_within_about_a_second(unresponsive_port: int) -> None:
    """A Redis that never answers the handshake costs a request about 1 s, not 5."""
    app = create_app(service_settings(f"redis://127.0.0.1:{unresponsive_port}/0"))
    async with client_for(app) as client:
        started = time.monotonic()
        response = await client.post(
            "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q4, "code": "x"}
        )
        elapsed = time.monotonic() - started
    app.state.grader.store.close()
    assert response.json() == DOWN
    assert elapsed < 3


@pytest.mark.asyncio
async def test_a_submission_the_broker_refused_is_503_and_a_replay_finds_it_and_sends_it(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused task is a 503 naming no host; replaying its Idempotency-Key makes no second
    submission but sends the first one's task, once: later replays send nothing more."""

    def refuse(submission_id: str, environment: str) -> None:
        raise QueueError("cannot queue grader.run_submission: Error 111 connecting to redis:6379")

    headers = {**SUBMITTER, "Idempotency-Key": "broker-refused-once"}
    body = {"challenge_id": Q4, "code": "x = 1\n"}
    async with client_for(app) as client:
        with monkeypatch.context() as patch:
            patch.setattr(app.state.grader.queue, "enqueue_run", refuse)
            refused = await client.post("/v1/submissions", headers=headers, json=body)
        replayed = await client.post("/v1/submissions", headers=headers, json=body)
        again = await client.post("/v1/submissions", headers=headers, json=body)
    assert (refused.status_code, refused.json()) == (503, DOWN)
    assert (replayed.status_code, replayed.json()["status"]) == (200, "queued")
    assert again.json()["id"] == replayed.json()["id"]
    store = app.state.grader.store
    assert queued_ids(store.client, queue_for(Q4_ENVIRONMENT)).count(again.json()["id"]) == 1
    assert store.run_unsent(again.json()["id"]) is False


@pytest.mark.asyncio
async def test_a_replay_of_a_submission_whose_task_was_sent_sends_nothing(app: FastAPI) -> None:
    """The task went out, only the answer was lost: a replay answers the record and queues no
    second task."""
    headers = {**SUBMITTER, "Idempotency-Key": "answer-lost-once"}
    body = {"challenge_id": Q4, "code": "x = 2\n"}
    async with client_for(app) as client:
        first = await client.post("/v1/submissions", headers=headers, json=body)
        replayed = await client.post("/v1/submissions", headers=headers, json=body)
    assert (first.status_code, replayed.status_code) == (202, 200)
    assert replayed.json() == first.json()
    queued = queued_ids(app.state.grader.store.client, queue_for(Q4_ENVIRONMENT))
    assert queued.count(first.json()["id"]) == 1
