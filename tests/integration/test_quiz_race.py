"""The last attempt, raced for real: two API processes (uvicorn), threads released together.

In-process requests barely overlap (one interpreter, a fast Redis), so a check-then-write
without a transaction passes them; requests spread over two processes on two cores do
collide: without the transaction several of them are stored (seen here in 7 of 10 rounds of
16 requests). With it, each round stores exactly one.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from grader.testing import SUBMITTER_KEY, ApiProcess, RedisServer

pytestmark = pytest.mark.docker

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
Q5 = "async-test-mastery/q5-test-isolation"
ROUNDS, PARALLEL = 6, 12


@pytest.fixture
def api_processes(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[str]]:
    """Two API processes on the session's Redis: their base URLs."""
    processes = [ApiProcess(redis_server.url, tmp_path / f"api{i}.log") for i in range(2)]
    try:
        for process in processes:
            process.start()
        yield [process.url for process in processes]
    finally:
        for process in processes:
            process.stop()


def _race(urls: list[str], body: dict[str, str]) -> list[httpx.Response]:
    """PARALLEL answers, half to each process, sent together once every client is ready."""
    clients = [
        httpx.Client(base_url=urls[i % 2], headers=AUTH, timeout=30) for i in range(PARALLEL)
    ]
    for client in clients:
        client.get("/healthz")  # connected before the start line
    start = threading.Barrier(PARALLEL)
    answers: list[httpx.Response] = []

    def send(client: httpx.Client) -> None:
        start.wait()
        answers.append(client.post("/v1/submissions", json=body))

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return answers


def test_answers_racing_across_api_processes_for_the_last_attempt_count_once(
    api_processes: list[str],
) -> None:
    """Each round: a learner's first answer, then 12 answers at once for the last attempt
    through two API processes: one 202, eleven 409 attempts_exhausted, two answers stored."""
    for _ in range(ROUNDS):
        who = f"racer-{uuid.uuid4().hex[:10]}"
        body = {"challenge_id": Q5, "learner_id": who, "choice": "A"}
        first = httpx.post(f"{api_processes[0]}/v1/submissions", json=body, headers=AUTH)
        assert first.status_code == 202, first.text
        answers = _race(api_processes, body)
        assert sorted(a.status_code for a in answers) == [202] + [409] * (PARALLEL - 1)
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
            "attempts_exhausted"
        }
        listed = httpx.get(
            f"{api_processes[1]}/v1/submissions", params={"learner_id": who}, headers=AUTH
        ).json()
        assert [r["attempt"] for r in listed["submissions"]] == [1, 2]
