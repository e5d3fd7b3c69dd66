"""The seed quiz played as its page describes, through the real API, Redis, Celery worker and
Docker: sessions, attempts, deadlines, feedback, progress, the badge and the gradebook."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import pytest_asyncio
import yaml

from grader.api.app import create_app
from grader.testing import (
    ADMIN_KEY,
    INSTRUCTOR_KEY,
    SUBMITTER_KEY,
    RedisServer,
    WorkerProcess,
    service_settings,
)

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
TEACHER = {"Authorization": f"Bearer {INSTRUCTOR_KEY}"}
ROOT = Path(__file__).resolve().parents[2] / "challenges"
SET = "async-test-mastery"
SEED = ROOT / SET


def seed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SEED / f"{name}.yaml").read_text())
    return data


def learner() -> str:
    return f"learner-{uuid.uuid4().hex[:12]}"


def wrong_q4() -> str:
    """Q4's snippet with two POSTs instead of three: counter ends at 2, not 3."""
    code: str = seed("q4-counter-after-test")["code"]
    return code.replace('        await client.post("/increment")\n', "", 1)


async def finished(api: httpx.AsyncClient, created: httpx.Response) -> dict[str, Any]:
    assert created.status_code in (200, 202), created.text
    body: dict[str, Any] = created.json()
    for _ in range(6):
        if body["status"] in ("done", "failed"):
            return body
        response = await api.get(f"/v1/submissions/{body['id']}", params={"wait": 30}, headers=AUTH)
        assert response.status_code == 200
        body = response.json()
    raise AssertionError(f"submission {body['id']} never finished: {body}")


async def answer(
    api: httpx.AsyncClient, who: str, name: str, **answer_fields: Any
) -> dict[str, Any]:
    body = {"challenge_id": f"{SET}/{name}", "learner_id": who, **answer_fields}
    return await finished(api, await api.post("/v1/submissions", json=body, headers=AUTH))


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    arrived: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        type(self).arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received, Receiver.arrived = [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def delivered(count: int) -> list[dict[str, Any]]:
    for _ in range(120):
        if len(Receiver.received) >= count:
            return Receiver.received
        Receiver.arrived.wait(0.5)
        Receiver.arrived.clear()
    raise AssertionError(f"{len(Receiver.received)} webhooks arrived, wanted {count}")


async def test_a_learner_who_answers_everything_right_earns_the_badge(
    api: httpx.AsyncClient, worker_process: WorkerProcess, receiver: str
) -> None:
    """Opens all five, answers each correctly (code through the worker, choices at once): every
    result shows attempts and the explanation; the badge is recorded once, shown in progress
    and announced in the webhook of the answer that earned it."""
    who = learner()
    names = sorted(p.stem for p in SEED.glob("q*.yaml"))
    opened = {}
    for name in names:
        response = await api.post(
            f"/v1/challenges/{SET}/{name}/open", json={"learner_id": who}, headers=AUTH
        )
        assert response.status_code == 200, response.text
        opened[name] = response.json()
        progress = opened[name]["progress"]
        assert (progress["state"], progress["attempts_left"]) == ("open", 2)
        deadline = datetime.fromisoformat(progress["deadline"])
        assert deadline - datetime.fromisoformat(progress["opened_at"]) == timedelta(seconds=120)
        for secret in ("answer", "explanation", "expectation", "hint"):
            assert secret not in opened[name]["challenge"]
    again = await api.post(
        f"/v1/challenges/{SET}/{names[0]}/open", json={"learner_id": who}, headers=AUTH
    )
    assert again.json()["progress"]["deadline"] == opened[names[0]]["progress"]["deadline"]

    q2_options = {
        o["label"]: o["code"] for o in seed("q2-which-option-is-a-syntax-error")["options"]
    }
    results = [
        await answer(api, who, "q5-test-isolation", choice="B"),
        await answer(api, who, "q1-async-test-output", code=seed("q1-async-test-output")["code"]),
        await answer(api, who, "q2-which-option-is-a-syntax-error", code=q2_options["C"]),
        await answer(api, who, "q3-why-runtime-error", choice="B"),
        await answer(
            api,
            who,
            "q4-counter-after-test",
            code=seed("q4-counter-after-test")["code"],
            callback_url=receiver,
        ),
    ]
    for result in results:
        verdict = result["result"]
        assert verdict["status"] == "passed", verdict["reason"]
        assert (verdict["attempts_used"], verdict["attempts_left"], verdict["late"]) == (
            1,
            1,
            False,
        )
        assert verdict["feedback"]["explanation"]
        assert verdict["feedback"]["hint"] is None  # no wrong attempt
    assert results[-1]["result"]["feedback"]["answer"] == "C: 3"
    assert [r["badge"] is not None for r in results] == [False, False, False, False, True]
    earned = results[-1]["badge"]
    assert (earned["set"], earned["name"], earned["submission_id"]) == (
        SET,
        "Async Test Mastery",
        results[-1]["id"],
    )

    [hook] = delivered(1)
    assert hook["id"] == results[-1]["id"]
    assert hook["badge"] == earned

    progress = (
        await api.get(f"/v1/sets/{SET}/progress", params={"learner_id": who}, headers=AUTH)
    ).json()
    assert [c["state"] for c in progress["challenges"]] == ["passed"] * 5
    assert (progress["passed"], progress["total"], progress["score"]) == (5, 5, 1.0)
    assert progress["badge"]["name"] == "Async Test Mastery"
    assert progress["earned"] == earned

    # A second right answer neither earns it again nor moves the time it was earned.
    repeat = await answer(api, who, "q5-test-isolation", choice="B")
    assert repeat["badge"] is None
    later = (
        await api.get(f"/v1/sets/{SET}/progress", params={"learner_id": who}, headers=AUTH)
    ).json()
    assert later["earned"] == earned


async def test_a_learner_who_runs_out_of_attempts_sees_the_explanation_only_at_the_end(
    api: httpx.AsyncClient, worker_process: WorkerProcess, receiver: str
) -> None:
    """Q4 wrong twice: the first result has the hint but no expected value, explanation or
    answer on any route (GET in every format, batch, webhook, challenge); the second (last)
    shows them; a third answer is 409 attempts_exhausted and stores nothing."""
    who = learner()
    first = await answer(api, who, "q4-counter-after-test", code=wrong_q4(), callback_url=receiver)
    result = first["result"]
    assert result["status"] == "failed"
    assert result["reason"] == "counter is 2: not the expected value (1 attempt left)"
    assert result["diff"] is None
    assert result["feedback"] == {
        "hint": seed("q4-counter-after-test")["hint"],
        "explanation": None,
        "answer": None,
    }
    assert (result["attempts_used"], result["attempts_left"], result["late"]) == (1, 1, False)

    explanation = seed("q4-counter-after-test")["explanation"].strip()
    leaks = ("expected 3", explanation[:40], "C: 3")
    routes = (
        [f"/v1/submissions/{first['id']}"]
        + [
            f"/v1/submissions/{first['id']}?format={fmt}"
            for fmt in ("exercism-v3", "gradescope", "prairielearn")
        ]
        + [f"/v1/challenges/{SET}/q4-counter-after-test", f"/v1/challenges?set={SET}"]
    )
    for route in routes:
        response = await api.get(route, headers=AUTH)
        assert response.status_code == 200, (route, response.text)
        for leak in leaks:
            assert leak not in response.text, (route, leak)
        assert '"answer"' not in response.text or route.startswith("/v1/submissions"), route
    [hook] = delivered(1)
    assert hook["result"]["reason"] == result["reason"]
    assert hook["result"]["feedback"]["explanation"] is None
    for leak in leaks:
        assert leak not in json.dumps(hook)
    # The submitter's gradebook and its exports show what the learner would see ...
    own = await api.get("/v1/submissions", params={"learner_id": who}, headers=AUTH)
    assert [r["reason"] for r in own.json()["submissions"]] == [result["reason"]]
    for fmt in ("csv", "jsonl"):
        exported = await api.get(
            "/v1/gradebook/export", params={"learner_id": who, "format": fmt}, headers=AUTH
        )
        assert exported.status_code == 200
        assert "expected 3" not in exported.text
    # ... and the admin's has the whole reason.
    whole = await api.get("/v1/submissions", params={"learner_id": who}, headers=ADMIN)
    assert [r["reason"] for r in whole.json()["submissions"]] == ["counter is 2, expected 3"]

    batch = await api.post(
        "/v1/submissions/batch",
        headers=AUTH,
        json={
            "submissions": [
                {"challenge_id": f"{SET}/q4-counter-after-test", "learner_id": who, "choice": "A"}
            ]
        },
    )
    [last] = batch.json()["submissions"]
    assert last["result"]["status"] == "failed"
    assert (last["result"]["attempts_used"], last["result"]["attempts_left"]) == (2, 0)
    assert last["result"]["reason"] == "A is not the answer"
    assert last["result"]["feedback"]["explanation"] == explanation
    assert last["result"]["feedback"]["answer"] == "C: 3"

    third = await api.post(
        "/v1/submissions",
        headers=AUTH,
        json={"challenge_id": f"{SET}/q4-counter-after-test", "learner_id": who, "choice": "C"},
    )
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "attempts_exhausted"
    listed = await api.get("/v1/submissions", params={"learner_id": who}, headers=AUTH)
    assert [r["attempt"] for r in listed.json()["submissions"]] == [1, 2]

    progress = (
        await api.get(f"/v1/sets/{SET}/progress", params={"learner_id": who}, headers=AUTH)
    ).json()
    q4 = next(
        c for c in progress["challenges"] if c["challenge_id"].endswith("q4-counter-after-test")
    )
    assert (q4["state"], q4["attempts_left"], q4["score"]) == ("failed", 0, 0.0)
    assert progress["earned"] is None


@pytest.fixture(scope="module")
def short_clock_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seed set whose challenges allow 1 s (the production files keep 120 s)."""
    root = tmp_path_factory.mktemp("short-clock")
    shutil.copytree(SEED, root / SET)
    for path in (root / SET).glob("q*.yaml"):
        path.write_text(path.read_text().replace("time_limit: 120", "time_limit: 1"))
    return root


@pytest.fixture(scope="module")
def short_clock_service(
    short_clock_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """Its own Redis and worker: the bank of a Redis is seeded once, so the short-clock copy
    cannot share the session's (which holds the real seed set)."""
    folder = tmp_path_factory.mktemp("short-clock-services")
    server = RedisServer(folder / "redis")
    server.folder.mkdir()
    server.start()
    worker = WorkerProcess(
        server.url,
        folder / "worker.log",
        name="short-clock",
        env={"GRADER_API__CHALLENGES_ROOT": str(short_clock_root)},
    )
    worker.start()
    yield server
    worker.stop()
    server.stop(graceful=False)


@pytest_asyncio.fixture
async def short_clock_api(
    short_clock_service: RedisServer, short_clock_root: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the short-clock copy, ``late_scores`` of the set from the test's parameter
    (set declarations are read by the API at start; the challenges come from the bank)."""
    declared_root = short_clock_root.parent / f"{short_clock_root.name}-{request.param}"
    shutil.copytree(short_clock_root, declared_root, dirs_exist_ok=True)
    declared = yaml.safe_load((declared_root / SET / "_set.yaml").read_text())
    declared["late_scores"] = request.param
    (declared_root / SET / "_set.yaml").write_text(yaml.safe_dump(declared))
    settings = service_settings(short_clock_service.url)
    settings.api.challenges_root = declared_root
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://grader"
    ) as client:
        yield client
    await app.state.grader.completions.close()
    app.state.grader.store.client.close()


@pytest.mark.parametrize(
    ("short_clock_api", "scores"), [(False, 0.0), (True, 1.0)], indirect=["short_clock_api"]
)
async def test_a_learner_who_answers_late_is_graded_and_marked_late(
    short_clock_api: httpx.AsyncClient, scores: float
) -> None:
    """Answers after the deadline are graded (a choice at once, code by the worker) and marked
    late; they score only where the set says late answers score."""
    api, who = short_clock_api, learner()
    for name in ("q4-counter-after-test", "q5-test-isolation"):
        opened = await api.post(
            f"/v1/challenges/{SET}/{name}/open", json={"learner_id": who}, headers=AUTH
        )
        assert opened.json()["progress"]["time_limit"] == 1
    await asyncio.sleep(1.5)
    choice = await answer(api, who, "q5-test-isolation", choice="B")
    code = await answer(
        api, who, "q4-counter-after-test", code=seed("q4-counter-after-test")["code"]
    )
    for result in (choice, code):
        verdict = result["result"]
        assert (verdict["status"], verdict["late"], verdict["score"]) == ("passed", True, scores)
        assert result["late"] is True
    progress = (
        await api.get(f"/v1/sets/{SET}/progress", params={"learner_id": who}, headers=AUTH)
    ).json()
    states = {c["challenge_id"].rsplit("/", 1)[1]: c["state"] for c in progress["challenges"]}
    expected_state = "passed" if scores else "passed_late"
    assert states["q4-counter-after-test"] == states["q5-test-isolation"] == expected_state
    assert states["q1-async-test-output"] == "not_opened"


async def test_parallel_answers_for_the_last_attempt_count_once(api: httpx.AsyncClient) -> None:
    """Eight concurrent answers for a learner's last attempt: one is stored, seven are 409
    attempts_exhausted, and the gradebook holds exactly two answers. (In one process these
    barely overlap; test_quiz_race.py makes them collide across two API processes.)"""
    who = learner()
    first = await answer(api, who, "q5-test-isolation", choice="A")
    assert first["result"]["attempts_left"] == 1
    body = {"challenge_id": f"{SET}/q5-test-isolation", "learner_id": who, "choice": "B"}
    responses = await asyncio.gather(
        *(api.post("/v1/submissions", json=body, headers=AUTH) for _ in range(8))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [409] * 7
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "attempts_exhausted"
    }
    listed = await api.get("/v1/submissions", params={"learner_id": who}, headers=AUTH)
    assert [r["attempt"] for r in listed.json()["submissions"]] == [1, 2]


async def test_parallel_code_answers_for_the_last_attempt_count_once(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """The same race with code (queued for the worker): one run is queued and graded."""
    who = learner()
    body = {"challenge_id": f"{SET}/q4-counter-after-test", "learner_id": who, "code": wrong_q4()}
    await answer(api, who, "q4-counter-after-test", code=wrong_q4())
    responses = await asyncio.gather(
        *(api.post("/v1/submissions", json=body, headers=AUTH) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [202] + [409] * 5
    [accepted] = [r for r in responses if r.status_code == 202]
    result = await finished(api, accepted)
    assert (result["result"]["attempts_used"], result["result"]["attempts_left"]) == (2, 0)
    assert result["result"]["reason"] == "counter is 2, expected 3"  # the last: whole
