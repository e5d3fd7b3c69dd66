"""The live challenge bank end to end: the API process (uvicorn), Celery worker processes,
Redis and Docker, all real; nothing rebuilt or restarted between steps.

An instructor pushes a new set with ``grader challenges push``: the valid challenge is
validated by a worker and published, the broken ones are refused with their reasons; a
learner's submission is graded against the published revision; a changed challenge gets a
regrade preview, then a recorded regrade announced by webhook; a second worker process
started on the same Redis sees the bank. The tests run in order on one service.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from grader.testing import (
    INSTRUCTOR_KEY,
    ROOT,
    SUBMITTER_KEY,
    RedisServer,
    WorkerProcess,
    free_port,
    worker_env,
)
from tests.conftest import NEW_ENV, OLD_ENV

pytestmark = [pytest.mark.docker]

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
INSTRUCTOR = {"Authorization": f"Bearer {INSTRUCTOR_KEY}"}
SET = "bank-demo"


def greeting(text: str) -> dict[str, Any]:
    return {
        "title": "Print a greeting",
        "kind": "output",
        "prompt": f"Print {text!r}.",
        "environment": OLD_ENV,
        "code": f"print({text!r})\n",
        "expectation": {"output": {"match": "normalized", "stdout": text}},
    }


BROKEN = """\
title: A regex that does not compile
kind: output
prompt: Print hello.
code: print("hello")
expectation:
  output:
    match: regex
    stdout: "(hello"
"""
WRONG_KEY = {
    "title": "Claims the wrong output",
    "kind": "output",
    "prompt": "What does it print?",
    "environment": OLD_ENV,
    "code": "print(1 + 2)\n",
    "expectation": {"output": {"stdout": "2\n"}},
}


@dataclass
class ApiProcess:
    """``uvicorn --factory grader.api.app:create_app``, the API as deployed, on a free port."""

    redis_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "uvicorn", "--factory", "grader.api.app:create_app"),
            *("--http", "grader.api.http:JsonErrorsH11Protocol"),
            *("--host", "127.0.0.1", "--port", str(self.port)),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=worker_env(self.redis_url),
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("API not up after 60 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


class Hooks(BaseHTTPRequestHandler):
    """Records every webhook body."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@dataclass
class Service:
    api: ApiProcess
    workers: list[WorkerProcess]
    client: httpx.Client
    folder: Path
    hook_url: str
    facts: dict[str, Any] = field(default_factory=dict)
    """What one step found that a later step uses (the tests run in order)."""


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, built_environments: list[str]
) -> Iterator[Service]:
    """Its own Redis, the API process and one worker process; a webhook receiver."""
    folder = tmp_path_factory.mktemp("bank")
    redis_server = RedisServer(folder / "redis")
    redis_server.folder.mkdir()
    redis_server.start()
    api = ApiProcess(redis_server.url, folder / "api.log")
    first = WorkerProcess(redis_server.url, folder / "w1.log", name="bank-w1")
    hooks = HTTPServer(("127.0.0.1", 0), Hooks)
    Hooks.bodies = []
    running: Service | None = None
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        api.start()
        first.start()
        with httpx.Client(base_url=api.url, timeout=60) as client:
            running = Service(
                api,
                [first],
                client,
                folder / "challenges",
                f"http://127.0.0.1:{hooks.server_address[1]}/hook",
            )
            yield running
    finally:
        hooks.shutdown()
        hooks.server_close()
        for worker in running.workers if running is not None else [first]:
            worker.stop()
        api.stop()
        redis_server.stop(graceful=False)


def write_set(folder: Path, files: dict[str, str]) -> Path:
    target = folder / SET
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text)
    return target


def push(service: Service, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader", "challenges", "push", str(folder)],
        env={**worker_env(""), "GRADER_URL": service.api.url, "GRADER_KEY": INSTRUCTOR_KEY},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def submit(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    created = service.client.post("/v1/submissions", json=body, headers=SUBMITTER)
    assert created.status_code == 202, created.text
    for _ in range(8):
        answer = service.client.get(
            f"/v1/submissions/{created.json()['id']}", params={"wait": 30}, headers=SUBMITTER
        ).json()
        if answer["status"] in ("done", "failed"):
            return dict(answer)
    raise AssertionError(f"never graded: {answer}")


def regraded(service: Service, started: httpx.Response) -> dict[str, Any]:
    """The regrade's job once finished (long-polled: a slow host may take more than one)."""
    assert started.status_code in (200, 202), started.text
    job: dict[str, Any] = started.json()
    for _ in range(10):
        if job["status"] != "running":
            return job
        job = service.client.get(
            f"/v1/challenges/{job['challenge_id']}/regrades/{job['id']}",
            params={"wait": 30},
            headers=INSTRUCTOR,
        ).json()
    raise AssertionError(f"regrade never finished: {job}")


def test_bundled_sets_are_published_on_first_start(service: Service) -> None:
    """An empty bank gets the bundled challenges once, published, from whichever starts first."""
    listed = service.client.get("/v1/challenges", headers=SUBMITTER).json()
    ids = {c["id"] for c in listed["challenges"]}
    assert "async-test-mastery/q4-counter-after-test" in ids
    bundled = sum(1 for p in (ROOT / "challenges").rglob("*.yaml") if not p.name.startswith("_"))
    assert listed["count"] == bundled
    report = service.client.get(
        "/v1/challenges/async-test-mastery/q5-test-isolation/validation", headers=INSTRUCTOR
    ).json()
    assert (report["status"], report["source"]) == ("published", "bundled")


def test_push_publishes_the_valid_and_refuses_the_invalid(service: Service) -> None:
    """push: the valid file is published, the broken one refused with its line and field, the
    one whose claim execution refutes rejected with the diff; exit code 1."""
    folder = write_set(
        service.folder,
        {
            "greeting.yaml": yaml.safe_dump(greeting("hello")),
            "broken.yaml": BROKEN,
            "wrong-key.yaml": yaml.safe_dump(WRONG_KEY),
        },
    )
    pushed = push(service, folder)
    assert pushed.returncode == 1, pushed.stdout + pushed.stderr
    lines = pushed.stdout.splitlines()
    assert any(line.startswith(f"✓ {SET}/greeting.yaml: published (revision ") for line in lines), (
        pushed.stdout
    )
    broken = lines.index(f"✗ {SET}/broken.yaml: rejected")
    assert lines[broken + 1] == (
        "    line 8: expectation.output.stdout: Value error, invalid regex '(hello': missing ), "
        "unterminated subpattern at position 0"
    )
    wrong = lines.index(next(line for line in lines if line.startswith(f"✗ {SET}/wrong-key")))
    assert "rejected (revision " in lines[wrong]
    assert lines[wrong + 1] == (
        f"    code meets the expectation [{OLD_ENV}]: output does not match (exact)"
    )
    assert lines[-1] == "1/3 files published or unchanged"

    report = service.client.get(
        f"/v1/challenges/{SET}/wrong-key/validation", headers=INSTRUCTOR
    ).json()
    assert report["status"] == "rejected"
    failed = [c for c in report["report"]["checks"] if not c["ok"]]
    assert "-2\n+3" in failed[0]["observed"]
    # learners never see a rejected or a refused challenge
    for name in ("wrong-key", "broken"):
        answer = service.client.post(
            "/v1/submissions",
            json={"challenge_id": f"{SET}/{name}", "code": "print(2)"},
            headers=SUBMITTER,
        )
        assert answer.status_code == 404, answer.text
    matrix = service.client.get(f"/v1/challenges/{SET}/greeting/matrix", headers=INSTRUCTOR)
    cells = {c["environment"]: c for c in matrix.json()["matrix"]["cells"]}
    assert cells[OLD_ENV]["expected"] is True
    assert cells[OLD_ENV]["outcome"] == "ok, printed 'hello'"
    service.facts["v1"] = report_revision(service, "greeting")


def report_revision(service: Service, name: str) -> str:
    report = service.client.get(f"/v1/challenges/{SET}/{name}/validation", headers=INSTRUCTOR)
    assert report.json()["status"] == "published", report.text
    return str(report.json()["revision"])


def test_a_learner_is_graded_against_the_published_revision(service: Service) -> None:
    """A submission to the pushed challenge passes, recording its revision and image digest."""
    result = submit(
        service,
        {
            "challenge_id": f"{SET}/greeting",
            "code": 'print("hello")',
            "callback_url": service.hook_url,
        },
    )
    assert (result["status"], result["result"]["status"]) == ("done", "passed")
    assert result["revision"] == service.facts["v1"]
    assert result["result"]["environment"]["image_id"].startswith("sha256:")
    service.facts["submission"] = result["id"]


def test_pushing_again_says_unchanged(service: Service) -> None:
    """The same files again: the valid one is unchanged, the rejected ones still refused."""
    pushed = push(service, service.folder / SET)
    assert pushed.returncode == 1
    assert f"= {SET}/greeting.yaml: unchanged (revision {service.facts['v1']})" in pushed.stdout


def test_a_changed_challenge_shows_a_regrade_preview(service: Service) -> None:
    """A new revision is published beside the old; a dry run lists the verdict that would
    change and records nothing; the real regrade records it beside the old and webhooks it."""
    folder = service.folder / SET
    (folder / "greeting.yaml").write_text(yaml.safe_dump(greeting("hello, world")))
    (folder / "broken.yaml").unlink()
    (folder / "wrong-key.yaml").unlink()
    pushed = push(service, folder)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    v2 = report_revision(service, "greeting")
    assert v2 != service.facts["v1"]

    preview = service.client.post(
        f"/v1/challenges/{SET}/greeting/regrade",
        params={"dry_run": "true", "wait": 30},
        json={"from_revision": service.facts["v1"]},
        headers=INSTRUCTOR,
    )
    job = regraded(service, preview)
    assert (job["status"], job["regraded"], job["unchanged"]) == ("done", 1, 0)
    change = job["changes"][0]
    assert change["submission_id"] == service.facts["submission"]
    assert (change["before"], change["after"]) == ("passed", "failed")
    assert change["from_revision"] == service.facts["v1"]
    stored = service.client.get(
        f"/v1/submissions/{service.facts['submission']}", headers=SUBMITTER
    ).json()
    assert stored["regrades"] == []
    assert stored["result"]["status"] == "passed"

    done = regraded(
        service,
        service.client.post(
            f"/v1/challenges/{SET}/greeting/regrade",
            params={"wait": 30},
            json={"from_revision": service.facts["v1"]},
            headers=INSTRUCTOR,
        ),
    )
    assert (done["status"], len(done["changes"])) == ("done", 1)
    stored = service.client.get(
        f"/v1/submissions/{service.facts['submission']}", headers=SUBMITTER
    ).json()
    assert stored["result"]["status"] == "passed"  # the old result stays
    assert [(r["revision"], r["status"]) for r in stored["regrades"]] == [(v2, "failed")]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(b.get("regrades") for b in Hooks.bodies):
        time.sleep(0.2)
    announced = [b for b in Hooks.bodies if b.get("regrades")]
    assert announced and announced[-1]["regrades"][0]["status"] == "failed"


def test_a_regrade_in_another_environment_previews_an_upgrade(service: Service) -> None:
    """The same past submission re-run under httpx 0.28: the preview lists its new verdict."""
    version = {
        **greeting("0.27"),
        "title": "Which httpx?",
        "code": "import httpx\nprint(httpx.__version__[:4])\n",
    }
    put = service.client.put(
        f"/v1/challenges/{SET}/httpx-version",
        content=yaml.safe_dump(version),
        headers={**INSTRUCTOR, "Content-Type": "application/yaml"},
    )
    assert put.status_code == 202, put.text
    report = service.client.get(
        f"/v1/challenges/{SET}/httpx-version/validation", params={"wait": 30}, headers=INSTRUCTOR
    ).json()
    assert report["status"] == "published", report
    matrix = service.client.get(
        f"/v1/challenges/{SET}/httpx-version/matrix", headers=INSTRUCTOR
    ).json()
    outcomes = {c["environment"]: c["outcome"] for c in matrix["matrix"]["cells"]}
    assert outcomes == {OLD_ENV: "ok, printed '0.27'", NEW_ENV: "ok, printed '0.28'"}
    assert matrix["differs"] is True
    past = submit(service, {"challenge_id": f"{SET}/httpx-version", "code": version["code"]})
    assert past["result"]["status"] == "passed"
    job = regraded(
        service,
        service.client.post(
            f"/v1/challenges/{SET}/httpx-version/regrade",
            params={"dry_run": "true", "wait": 30},
            json={"environment": NEW_ENV},
            headers=INSTRUCTOR,
        ),
    )
    assert [(c["submission_id"], c["before"], c["after"]) for c in job["changes"]] == [
        (past["id"], "passed", "failed")
    ]
    assert job["changes"][0]["from_environment"] == OLD_ENV


def test_a_second_worker_sees_the_bank(service: Service, tmp_path: Path) -> None:
    """With the first worker gone, an upload waits validating (learners get 404); a second
    worker started on the same Redis validates it, and grades against the bank."""
    service.workers[0].stop()
    upload = service.client.post(
        "/v1/challenges",
        content=yaml.safe_dump({**greeting("late"), "set": SET, "id": "late"}),
        headers={**INSTRUCTOR, "Content-Type": "application/yaml"},
    )
    assert upload.status_code == 202, upload.text
    assert upload.json()["status"] == "validating"
    refused = service.client.post(
        "/v1/submissions",
        json={"challenge_id": f"{SET}/late", "code": 'print("late")'},
        headers=SUBMITTER,
    )
    assert refused.status_code == 404
    second = WorkerProcess(service.api.redis_url, tmp_path / "w2.log", name="bank-w2", pool_size=0)
    second.start(wait=False)
    service.workers.append(second)
    try:
        report = service.client.get(
            f"/v1/challenges/{SET}/late/validation", params={"wait": 30}, headers=INSTRUCTOR
        )
        for _ in range(6):
            if report.json()["status"] != "validating":
                break
            report = service.client.get(
                f"/v1/challenges/{SET}/late/validation", params={"wait": 30}, headers=INSTRUCTOR
            )
        assert report.json()["status"] == "published", second.tail()
        late = submit(service, {"challenge_id": f"{SET}/late", "code": 'print("late")'})
        assert late["result"]["status"] == "passed"
        changed = submit(service, {"challenge_id": f"{SET}/greeting", "code": 'print("hello")'})
        assert changed["result"]["status"] == "failed"  # against revision 2, which it read
    finally:
        second.stop()


def test_retiring_keeps_the_revisions(service: Service) -> None:
    """DELETE retires: learners get 404, the history and past submissions stay readable."""
    retired = service.client.delete(f"/v1/challenges/{SET}/greeting", headers=INSTRUCTOR)
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired"] is True
    answer = service.client.post(
        "/v1/submissions",
        json={"challenge_id": f"{SET}/greeting", "code": 'print("hello")'},
        headers=SUBMITTER,
    )
    assert answer.status_code == 404
    report = service.client.get(
        f"/v1/challenges/{SET}/greeting/validation",
        params={"revision": service.facts["v1"]},
        headers=INSTRUCTOR,
    ).json()
    assert report["status"] == "published" and report["retired"] is True
    assert len(report["revisions"]) == 2
    past = service.client.get(f"/v1/submissions/{service.facts['submission']}", headers=SUBMITTER)
    assert past.json()["revision"] == service.facts["v1"]
