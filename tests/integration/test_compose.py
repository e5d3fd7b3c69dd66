"""The docker-compose stack (Redis, API, worker) grades a seed submission over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from grader.constants import SERVICE_IMAGE
from grader.sandbox import ImageBuilder, build_service_image, connect
from grader.settings import Settings
from grader.testing import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def compose(folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-p", project, *args],
        cwd=folder,
        text=True,
        capture_output=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def stack_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose")


@pytest.fixture(scope="module")
def stack(
    stack_folder: Path, settings: Settings, built_environments: list[str]
) -> Iterator[tuple[str, str]]:
    """`make up`'s steps in a scratch folder: service image, env file, compose up, ready."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (make system-deps installs it)")
    build_service_image(ImageBuilder(connect(), settings.images), ROOT, tag_repo=SERVICE_IMAGE)
    shutil.copy(ROOT / "docker-compose.yml", stack_folder / "docker-compose.yml")
    port = free_port()
    grader = [sys.executable, "-m", "grader"]
    subprocess.run(
        [*grader, "deploy", "env", "--port", str(port)],
        cwd=stack_folder,
        check=True,
        capture_output=True,
    )
    project = f"gradertest{uuid.uuid4().hex[:6]}"
    up = compose(stack_folder, project, "up", "-d")
    assert up.returncode == 0, up.stderr
    try:
        url = f"http://127.0.0.1:{port}"
        waited = subprocess.run(
            [*grader, "deploy", "wait", "--url", url, "--timeout", "180"],
            cwd=stack_folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert waited.returncode == 0, (
            waited.stdout
            + waited.stderr
            + compose(stack_folder, project, "logs", "--tail", "40").stdout
        )
        assert f"Grader is ready at {url}" in waited.stdout
        key = next(
            line.split("=", 1)[1]
            for line in (stack_folder / ".grader-key").read_text().splitlines()
            if line.startswith("submitter=")
        )
        yield url, key
    finally:
        compose(stack_folder, project, "down", "-v", "--remove-orphans")


def test_compose_stack_grades_a_seed_submission(stack: tuple[str, str]) -> None:
    """Brought up like `make up`, the stack grades seed Q4 over HTTP with a passed verdict."""
    url, key = stack
    code = yaml.safe_load(
        (ROOT / "challenges" / "async-test-mastery" / "q4-counter-after-test.yaml").read_text()
    )["code"]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=40) as client:
        created = client.post(
            "/v1/submissions",
            json={"challenge_id": "async-test-mastery/q4-counter-after-test", "code": code},
        )
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 120
        body = created.json()
        while body["status"] not in ("done", "failed") and time.monotonic() < deadline:
            body = client.get(f"/v1/submissions/{body['id']}", params={"wait": 30}).json()
        assert body["status"] == "done"
        assert body["result"]["status"] == "passed"
        assert body["result"]["environment"]["packages"]["httpx"] == "0.27.2"
        assert client.get("/readyz").json()["status"] == "ready"


GREETING = """\
title: Print a greeting
kind: output
prompt: Print the greeting.
environment: fastapi-0.115-httpx-0.27
code: print("hello compose")
expectation:
  output:
    stdout: "hello compose\\n"
"""
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


def test_compose_stack_takes_a_pushed_set_and_serves_the_pages(
    stack: tuple[str, str], stack_folder: Path, tmp_path: Path
) -> None:
    """With no rebuild and no restart: a pushed set's valid challenge is published and graded,
    the broken one refused with its line; the console and the seed quiz pages answer."""
    url, key = stack
    admin = next(
        line.split("=", 1)[1]
        for line in (stack_folder / ".grader-key").read_text().splitlines()
        if line.startswith("admin=")
    )
    folder = tmp_path / "pushed" / "compose-set"
    folder.mkdir(parents=True)
    (folder / "greeting.yaml").write_text(GREETING)
    (folder / "broken.yaml").write_text(BROKEN)
    pushed = subprocess.run(
        [sys.executable, "-m", "grader", "challenges", "push", str(folder)],
        env={**os.environ, "GRADER_URL": url, "GRADER_API_KEY": admin},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert pushed.returncode == 1, pushed.stdout + pushed.stderr
    assert "compose-set/greeting.yaml: published" in pushed.stdout
    assert "compose-set/broken.yaml: rejected" in pushed.stdout
    assert "line 8" in pushed.stdout
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=40) as client:
        answer = client.post(
            "/v1/submissions",
            params={"wait": 30},
            json={"challenge_id": "compose-set/greeting", "code": 'print("hello compose")'},
        ).json()
        assert answer["result"]["status"] == "passed", answer
        assert client.get("/v1/challenges/compose-set/broken").status_code == 404
    with httpx.Client(base_url=url, timeout=20) as browser:
        assert browser.get("/console").headers["location"].startswith("/signin")
        form = browser.get("/signin")
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = browser.post("/signin", data={"api_key": key, "csrf_token": token})
        assert signed.status_code == 303
        quiz = browser.get("/play/async-test-mastery")
        assert quiz.status_code == 200
        assert "Async Test Mastery" in quiz.text
        assert browser.get("/static/style.css").status_code == 200


def test_the_health_checks_pass_without_starting_python(stack: tuple[str, str]) -> None:
    """The worker's check is a `find` on its heartbeat file, the API's a bash request (issue 18),
    and both report healthy."""
    import docker  # noqa: PLC0415  only this test looks at the containers

    url, _ = stack
    port = url.rsplit(":", 1)[1]
    client = docker.from_env()
    try:
        api = next(
            c
            for c in client.containers.list(filters={"label": "com.docker.compose.service=api"})
            if any(b and b[0].get("HostPort") == port for b in c.ports.values())
        )
        project = api.labels["com.docker.compose.project"]
        labels = [f"com.docker.compose.project={project}", "com.docker.compose.service=worker"]
        (worker,) = client.containers.list(filters={"label": labels})
        for container in (worker, api):
            deadline = time.monotonic() + 90
            health: dict[str, object] = {}
            while time.monotonic() < deadline:
                container.reload()
                health = container.attrs["State"].get("Health") or {}
                if health.get("Status") == "healthy":
                    break
                time.sleep(1)
            assert health.get("Status") == "healthy", health
        worker_test = worker.attrs["Config"]["Healthcheck"]["Test"]
        assert worker_test[0] == "CMD-SHELL"
        assert "find /tmp/grader-worker-heartbeat" in worker_test[1]
        api_test = api.attrs["Config"]["Healthcheck"]["Test"]
        assert api_test[:3] == ["CMD", "bash", "-c"]
        assert "python" not in " ".join(worker_test + api_test)
    finally:
        client.close()
