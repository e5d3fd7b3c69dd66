"""The docker-compose stack (Redis, API, worker) grades a seed submission over HTTP."""

from __future__ import annotations

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


@pytest.fixture
def stack(
    tmp_path: Path, settings: Settings, built_environments: list[str]
) -> Iterator[tuple[str, str]]:
    """`make up`'s steps in a scratch folder: service image, env file, compose up, ready."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (make system-deps installs it)")
    build_service_image(ImageBuilder(connect(), settings.images), ROOT, tag_repo=SERVICE_IMAGE)
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    port = free_port()
    grader = [sys.executable, "-m", "grader"]
    subprocess.run(
        [*grader, "deploy", "env", "--port", str(port)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    project = f"gradertest{uuid.uuid4().hex[:6]}"
    up = compose(tmp_path, project, "up", "-d")
    assert up.returncode == 0, up.stderr
    try:
        url = f"http://127.0.0.1:{port}"
        waited = subprocess.run(
            [*grader, "deploy", "wait", "--url", url, "--timeout", "180"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert waited.returncode == 0, (
            waited.stdout
            + waited.stderr
            + compose(tmp_path, project, "logs", "--tail", "40").stdout
        )
        assert f"Grader is ready at {url}" in waited.stdout
        key = next(
            line.split("=", 1)[1]
            for line in (tmp_path / ".grader-key").read_text().splitlines()
            if line.startswith("submitter=")
        )
        yield url, key
    finally:
        compose(tmp_path, project, "down", "-v", "--remove-orphans")


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
