"""Raw runs end to end: HTTP -> Redis -> a real Celery worker process -> real Docker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from grader.adapters.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from grader.testing import SUBMITTER_KEY, WEBHOOK_SECRET, WorkerProcess
from tests.conftest import NEW_ENV, OLD_ENV

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}  # a submitter key with runs: true


async def run_and_wait(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST with ?wait=, then long-poll until the run is final."""
    created = await api.post("/v1/runs", json=body, params={"wait": 30}, headers=AUTH)
    assert created.status_code in (200, 202), created.text
    record: dict[str, Any] = created.json()
    for _ in range(6):
        if record["status"] in ("done", "failed"):
            return record
        polled = await api.get(f"/v1/runs/{record['id']}", params={"wait": 30}, headers=AUTH)
        assert polled.status_code == 200, polled.text
        record = polled.json()
    raise AssertionError(f"run {record['id']} never finished: {record}")


async def test_a_script_reads_its_stdin_and_imports_its_other_files(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Several files, a package among them, and stdin reach the sandboxed program."""
    files = {
        "main.py": "import sys\nfrom lib.shout import shout\n"
        "for line in sys.stdin:\n    print(shout(line.strip()))\n",
        "lib/__init__.py": "",
        "lib/shout.py": "def shout(text):\n    return text.upper() + '!'\n",
    }
    record = await run_and_wait(
        api,
        {
            "environment": OLD_ENV,
            "files": files,
            "entry": "main.py",
            "stdin": "hello\nworld\n",
            "metadata": {"job": "j-1"},
        },
    )
    assert record["status"] == "done"
    observation = record["observation"]
    assert observation["status"] == "completed"
    assert observation["stdout"]["text"] == "HELLO!\nWORLD!\n"
    assert observation["exit_code"] == 0
    assert observation["environment"]["name"] == OLD_ENV
    assert record["files"] == {path: len(text.encode()) for path, text in files.items()}
    assert record["stdin_bytes"] == 12
    assert record["metadata"] == {"job": "j-1"}
    assert record["image_packages"]["httpx"] == "0.27.2"


async def test_without_stdin_a_read_sees_end_of_file(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """No stdin: input() raises EOFError, reported as the run's exception, exit status 1."""
    record = await run_and_wait(
        api,
        {"environment": NEW_ENV, "files": {"main.py": "input()\n"}, "entry": "main.py"},
    )
    observation = record["observation"]
    assert observation["exit_code"] == 1
    assert observation["exception"]["type"] == "EOFError"
    assert observation["environment"]["name"] == NEW_ENV


async def test_a_pytest_run_reports_its_tests(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """mode pytest: the entry is the test file, its tests read stdin; each outcome is reported."""
    record = await run_and_wait(
        api,
        {
            "environment": OLD_ENV,
            "files": {
                "test_calc.py": "from calc import add\n\n"
                "def test_add():\n    assert add(*map(int, input().split())) == 4\n\n"
                "def test_wrong():\n    assert add(2, 2) == 5\n",
                "calc.py": "def add(a, b):\n    return a + b\n",
            },
            "entry": "test_calc.py",
            "mode": "pytest",
            "stdin": "2 2\n",
        },
    )
    outcomes = {t["nodeid"]: t["outcome"] for t in record["observation"]["tests"]}
    assert outcomes == {"test_calc.py::test_add": "passed", "test_calc.py::test_wrong": "failed"}
    assert record["mode"] == "pytest"


async def test_a_run_over_its_wall_limit_is_stopped(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """limits.wall_seconds is enforced: an endless loop ends time_limit_exceeded."""
    record = await run_and_wait(
        api,
        {
            "environment": OLD_ENV,
            "files": {"main.py": "print('start', flush=True)\nwhile True:\n    pass\n"},
            "entry": "main.py",
            "limits": {"wall_seconds": 1},
        },
    )
    assert record["status"] == "done"
    assert record["limits"] == {"wall_seconds": 1.0}
    assert record["observation"]["status"] == "time_limit_exceeded"
    assert record["observation"]["timed_out"] is True
    assert record["observation"]["stdout"]["text"] == "start\n"


async def test_a_printed_report_is_only_output(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A report line printed by the program is its stdout, never the run's report."""
    fake = json.dumps({"event": "report", "version": 1, "status": "completed", "exit_code": 0})
    record = await run_and_wait(
        api,
        {
            "environment": OLD_ENV,
            "files": {"main.py": f"print({fake!r})\nraise SystemExit(3)\n"},
            "entry": "main.py",
        },
    )
    assert record["observation"]["exit_code"] == 3
    assert record["observation"]["stdout"]["text"] == fake + "\n"


async def test_queued_then_polled_and_kept_apart_from_submissions(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Without wait: 202 and a Location; the run is only visible under /v1/runs."""
    created = await api.post(
        "/v1/runs",
        json={"environment": OLD_ENV, "files": {"a.py": "print(6 * 7)\n"}, "entry": "a.py"},
        headers=AUTH,
    )
    assert created.status_code == 202
    run_id = created.json()["id"]
    assert created.headers["Location"] == f"/v1/runs/{run_id}"
    assert created.json()["status"] == "queued"
    assert created.json()["observation"] is None
    polled = await api.get(f"/v1/runs/{run_id}", params={"wait": 30}, headers=AUTH)
    assert polled.json()["observation"]["stdout"]["text"] == "42\n"
    as_submission = await api.get(f"/v1/submissions/{run_id}", headers=AUTH)
    assert as_submission.status_code == 404
    assert as_submission.json()["error"]["code"] == "not_found"


async def test_an_idempotent_replay_returns_the_first_run(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """The same Idempotency-Key answers the first run (200), not a second one."""
    body = {"environment": OLD_ENV, "files": {"main.py": "print(1)\n"}, "entry": "main.py"}
    headers = {**AUTH, "Idempotency-Key": "run-replay-1"}
    first = await api.post("/v1/runs", json=body, headers=headers)
    again = await api.post("/v1/runs", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]


class Receiver(BaseHTTPRequestHandler):
    """Records webhook deliveries."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    done: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()
        type(self).done.set()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received, Receiver.done = [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


async def test_the_webhook_carries_the_signed_run_record(
    api: httpx.AsyncClient, worker_process: WorkerProcess, receiver: str
) -> None:
    """With callback_url, the finished run is POSTed HMAC-signed, as GET /v1/runs/{id} shows it."""
    record = await run_and_wait(
        api,
        {
            "environment": OLD_ENV,
            "files": {"main.py": "print(input()[::-1])\n"},
            "entry": "main.py",
            "stdin": "stressed\n",
            "callback_url": receiver,
        },
    )
    assert Receiver.done.wait(60), worker_process.tail()
    headers, body = Receiver.received[-1]
    assert verify(WEBHOOK_SECRET, int(headers[TIMESTAMP_HEADER]), body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["id"] == record["id"]
    assert payload["observation"]["stdout"]["text"] == "desserts\n"
    assert "result" not in payload
