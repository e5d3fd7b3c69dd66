"""One id follows a submission from the HTTP request to the container, in JSON lines.

The production programs: ``uvicorn --factory grader.api.app:serve`` as a child process, the
session's Celery worker process, Docker underneath.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from grader.testing import SUBMITTER_KEY, ApiProcess, RedisServer, WorkerProcess

Q4 = "async-test-mastery/q4-counter-after-test"


def _json_lines(path: Path) -> list[dict[str, object]]:
    """Every line of ``path`` as JSON (fails on the first line that is not)."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"{path.name}:{number} is not JSON: {line[:200]!r}")
    return lines


def _traced(path: Path, request_id: str, *, until: str) -> list[dict[str, object]]:
    """The lines of ``path`` with ``request_id``, once one of them is the event ``until``.

    A line may come a moment after the answer it describes: the API logs a request once
    the response is sent, the worker logs after storing the verdict.
    """
    deadline = time.monotonic() + 20
    while True:
        traced = [line for line in _json_lines(path) if line.get("request_id") == request_id]
        if any(line["event"] == until for line in traced) or time.monotonic() > deadline:
            return traced
        time.sleep(0.2)


@pytest.fixture
def api_url(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The API as the service runs it, its log in a file."""
    api = ApiProcess(redis_server.url, tmp_path / "api.log")
    api.start()
    yield api.url, api.log_path
    api.stop()


def test_one_request_id_follows_a_submission_to_its_container(
    api_url: tuple[str, Path], worker_process: WorkerProcess
) -> None:
    url, api_log = api_url
    request_id = f"trace-{uuid.uuid4().hex}"
    response = httpx.post(
        f"{url}/v1/submissions",
        params={"wait": 30},
        headers={"Authorization": f"Bearer {SUBMITTER_KEY}", "X-Request-ID": request_id},
        json={"challenge_id": Q4, "code": "counter = 3\n"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == request_id
    submission_id = response.json()["id"]
    assert response.json()["status"] == "done"

    api_lines = _traced(api_log, request_id, until="http_request")
    assert [(line["event"], line["route"], line["status"]) for line in api_lines] == [
        ("http_request", "/v1/submissions", 200)
    ]

    traced = _traced(worker_process.log_path, request_id, until="graded")
    assert traced, worker_process.tail()
    assert {line["submission_id"] for line in traced} == {submission_id}
    task_ids = {line.get("task_id") for line in traced}
    assert len(task_ids) == 1
    assert None not in task_ids
    runs = [line for line in traced if line["event"] in ("sandbox_run", "sandbox_isolated_run")]
    assert len(runs) == 1
    container_id = str(runs[0]["container_id"])
    assert len(container_id) == 64
    assert all(c in "0123456789abcdef" for c in container_id)
    assert {line["event"] for line in traced} >= {"graded"}
