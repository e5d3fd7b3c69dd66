"""End to end: HTTP -> Redis -> a real Celery worker process -> real Docker -> verdict."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from grader.adapters.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from grader.testing import SUBMITTER_KEY, WEBHOOK_SECRET, WorkerProcess
from tests.conftest import OLD_ENV

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
SEED = Path(__file__).resolve().parents[2] / "challenges" / "async-test-mastery"


def seed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SEED / f"{name}.yaml").read_text())
    return data


async def submit_and_wait(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    created = await api.post("/v1/submissions", json=body, headers=AUTH)
    assert created.status_code == 202, created.text
    submission_id = created.json()["id"]
    for _ in range(6):  # up to 6 long-polls of 30 s
        response = await api.get(
            f"/v1/submissions/{submission_id}", params={"wait": 30}, headers=AUTH
        )
        assert response.status_code == 200
        body = response.json()
        if body["status"] in ("done", "failed"):
            return body
    raise AssertionError(f"submission {submission_id} never finished: {body}")


@pytest.mark.parametrize(
    "name", ["q1-async-test-output", "q3-why-runtime-error", "q4-counter-after-test"]
)
async def test_seed_code_submissions_pass(
    api: httpx.AsyncClient, worker_process: WorkerProcess, name: str
) -> None:
    """Submitting each seed challenge's own code over HTTP yields a passed verdict."""
    result = await submit_and_wait(
        api, {"challenge_id": f"async-test-mastery/{name}", "code": seed(name)["code"]}
    )
    assert result["status"] == "done"
    assert result["result"]["status"] == "passed", result["result"]["reason"]
    assert result["result"]["environment"]["name"] == OLD_ENV
    assert result["result"]["environment"]["image_id"].startswith("sha256:")
    assert result["result"]["environment"]["packages"]["httpx"] == "0.27.2"
    assert result["result"]["observation"]["environment"]["name"] == OLD_ENV


@pytest.mark.parametrize(("label", "verdict"), [("C", "passed"), ("A", "failed")])
async def test_seed_syntax_options_as_code(
    api: httpx.AsyncClient, worker_process: WorkerProcess, label: str, verdict: str
) -> None:
    """Q2: submitting the missing-colon option's code passes; a valid option fails."""
    options = {o["label"]: o["code"] for o in seed("q2-which-option-is-a-syntax-error")["options"]}
    result = await submit_and_wait(
        api,
        {
            "challenge_id": "async-test-mastery/q2-which-option-is-a-syntax-error",
            "code": options[label],
        },
    )
    assert result["result"]["status"] == verdict


async def test_a_wrong_snippet_fails_with_a_reason(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Q4 with two POSTs leaves counter at 2: failed, and the reason says so without the
    expected value (Q4 limits attempts, so a submitter's result never states it)."""
    code = seed("q4-counter-after-test")["code"].replace(
        '        await client.post("/increment")\n', "", 1
    )
    result = await submit_and_wait(
        api, {"challenge_id": "async-test-mastery/q4-counter-after-test", "code": code}
    )
    assert result["result"]["status"] == "failed"
    assert result["result"]["reason"] == "counter is 2: not the expected value"


async def test_post_with_wait_returns_the_verdict_in_one_round_trip(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """POST ?wait= answers 200 with the graded result once the worker has stored it."""
    name = "q1-async-test-output"
    response = await api.post(
        "/v1/submissions",
        params={"wait": 30},
        headers=AUTH,
        json={"challenge_id": f"async-test-mastery/{name}", "code": seed(name)["code"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["result"]["status"]) == ("done", "passed")
    assert [t["outcome"] for t in body["result"]["observation"]["tests"]] == ["passed"]


@pytest.mark.parametrize(
    ("name", "choice", "verdict"),
    [
        ("q1-async-test-output", "A", "passed"),
        ("q1-async-test-output", "D", "failed"),
        ("q3-why-runtime-error", "B", "passed"),
        ("q4-counter-after-test", "C", "passed"),
        ("q5-test-isolation", "B", "passed"),
        ("q5-test-isolation", "A", "failed"),
    ],
)
async def test_seed_choice_submissions(
    api: httpx.AsyncClient, name: str, choice: str, verdict: str
) -> None:
    """A choice is graded against the key at once, without running anything."""
    response = await api.post(
        "/v1/submissions",
        headers=AUTH,
        json={"challenge_id": f"async-test-mastery/{name}", "choice": choice},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "done"
    assert body["result"]["status"] == verdict
    assert body["result"]["observation"] is None


async def test_idempotency_key_returns_the_first_submission(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """The same Idempotency-Key returns the same submission (200) instead of a new one."""
    body = {"challenge_id": "async-test-mastery/q5-test-isolation", "choice": "B"}
    headers = {**AUTH, "Idempotency-Key": "attempt-42"}
    first = await api.post("/v1/submissions", json=body, headers=headers)
    second = await api.post("/v1/submissions", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]


async def test_batch_accepts_each_item_on_its_own(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A batch returns one entry per item; a bad item does not sink the others."""
    response = await api.post(
        "/v1/submissions/batch",
        headers=AUTH,
        json={
            "submissions": [
                {"challenge_id": "async-test-mastery/q5-test-isolation", "choice": "B"},
                {"challenge_id": "nope/missing", "choice": "A"},
                {
                    "challenge_id": "async-test-mastery/q4-counter-after-test",
                    "code": seed("q4-counter-after-test")["code"],
                },
            ]
        },
    )
    assert response.status_code == 202
    items = response.json()["submissions"]
    assert [i["index"] for i in items] == [0, 1, 2]
    assert items[0]["result"]["status"] == "passed"
    assert items[1]["error"]["message"] == "no challenge 'nope/missing'; see GET /v1/challenges"
    final = await api.get(f"/v1/submissions/{items[2]['id']}", params={"wait": 30}, headers=AUTH)
    assert final.json()["result"]["status"] == "passed"


class Receiver(BaseHTTPRequestHandler):
    """Records webhook deliveries; answers 503 to the first one to force a retry."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first: ClassVar[bool] = True
    done: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        if type(self).fail_first:
            type(self).fail_first = False
            self.send_response(503)
        else:
            self.send_response(204)
            type(self).done.set()
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received, Receiver.fail_first = [], True
    Receiver.done = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


async def test_webhook_is_signed_and_retried(
    api: httpx.AsyncClient, worker_process: WorkerProcess, receiver: str
) -> None:
    """The result is POSTed, HMAC-signed; a 503 is retried until delivered."""
    result = await submit_and_wait(
        api,
        {
            "challenge_id": "async-test-mastery/q4-counter-after-test",
            "code": seed("q4-counter-after-test")["code"],
            "callback_url": receiver,
            "metadata": {"course": "async-101"},
        },
    )
    assert Receiver.done.wait(60), worker_process.tail()
    assert len(Receiver.received) == 2
    headers, body = Receiver.received[-1]
    assert verify(WEBHOOK_SECRET, int(headers[TIMESTAMP_HEADER]), body, headers[SIGNATURE_HEADER])
    assert not verify("x" * 40, int(headers[TIMESTAMP_HEADER]), body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["id"] == result["id"]
    assert payload["result"]["status"] == "passed"
    assert payload["metadata"] == {"course": "async-101"}


async def test_environments_show_image_digests(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """GET /v1/environments lists both environments with the images workers run."""
    response = await api.get("/v1/environments", headers=AUTH)
    environments = {e["name"]: e for e in response.json()["environments"]}
    assert environments[OLD_ENV]["available"] is True
    assert environments[OLD_ENV]["image_id"].startswith("sha256:")
    assert environments[OLD_ENV]["packages"]["httpx"] == "0.27.2"


async def test_readyz_and_metrics(api: httpx.AsyncClient, worker_process: WorkerProcess) -> None:
    """/readyz is ready with a worker up; /metrics counts verdicts and queue depth."""
    await submit_and_wait(
        api, {"challenge_id": "async-test-mastery/q5-test-isolation", "choice": "B"}
    )
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["docker"] is True
    metrics = (await api.get("/metrics")).text
    assert 'grader_submissions_total{verdict="passed"}' in metrics
    assert f'grader_queue_depth{{queue="grader.env.{OLD_ENV}"}}' in metrics
    assert "grader_submission_latency_seconds_bucket" in metrics
