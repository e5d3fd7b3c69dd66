"""End to end over HTTP: uvicorn + the API, a real redis-server, a real Celery worker process.

Started the way ``grader/testing.py`` starts them (the same classes, the same test keys),
except that the API runs as a real ``uvicorn`` server on 127.0.0.1 and the client is httpx
over TCP. A submission is ``POST /v1/submissions?wait=30`` (one round trip: the answer comes
with the verdict), then ``GET /v1/submissions/{id}?wait=30`` only while it is not done; its
latency is from the POST's start to the final answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx

from grader.domain.environment import discover
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.sandbox.containers import LABEL_OWNER, LABEL_PROFILE
from grader.settings import Settings
from grader.testing import (
    ROOT,
    SUBMITTER_KEY,
    RedisServer,
    WorkerProcess,
    free_port,
    worker_env,
)

from .common import PhasePlan, Sample
from .variants import Variant
from .workloads import Workload

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
_OWNER = re.compile(r"""\bowner\W{1,4}([0-9a-f]{12})\b""")
"""The sandbox owner in a ``worker_process_ready`` log line, key=value or JSON."""
READY_GRACE = 1.5
"""Without cgroup CPU counters: seconds to wait once a pool has its containers (pre-import)."""


class EndToEnd(Variant):
    """HTTP submit -> Redis -> Celery worker (warm pools) -> Docker -> verdict -> HTTP."""

    key = "e2e"
    paced = True
    label = "ours: HTTP end to end, warm pool"

    def __init__(
        self, *, worker_concurrency: int, pool_size: int, environments: list[str] | None = None
    ) -> None:
        self.worker_concurrency = worker_concurrency
        self.pool_size = pool_size
        self.environments = environments
        """Only these environments' queues and pools (default: every environment)."""
        self.folder = tempfile.TemporaryDirectory(prefix="grader-bench-")
        self.redis: RedisServer | None = None
        self.worker: WorkerProcess | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.owners: list[str] = []
        # Each process keeps pool_size containers per environment and pre-import profile
        # (``judge`` too when judges are reused: its used judges wait beside them).
        settings = Settings()
        served = len(environments) if environments else len(discover(settings.images.root))
        profiles = [PreimportProfile.FULL, PreimportProfile.BARE, PreimportProfile.SERVE]
        if self._worker_settings().get("GRADER_SANDBOX__REUSE__JUDGES", "") != "false" and (
            settings.sandbox.reuse.judges
        ):
            profiles.append(PreimportProfile.JUDGE)
        self.per_profile = {profile.value: pool_size * served for profile in profiles}
        if PreimportProfile.JUDGE.value in self.per_profile:  # kept at one (used ones wait too)
            self.per_profile[PreimportProfile.JUDGE.value] = min(pool_size, 1) * served
        self.containers_per_process = sum(self.per_profile.values())
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()

    # services -------------------------------------------------------------------------------

    def start(self) -> None:
        folder = Path(self.folder.name)
        self.redis = RedisServer(folder)
        self.redis.start()
        self.worker = WorkerProcess(
            self.redis.url,
            folder / "worker.log",
            pool_size=self.pool_size,
            concurrency=self.worker_concurrency,
            env=self._worker_settings(),
        )
        self.worker.start()
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        with (folder / "api.log").open("ab") as log:
            self.api = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "grader.api.app:create_app",
                    "--http",
                    "grader.api.http:JsonErrorsH11Protocol",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                cwd=ROOT,
                env=worker_env(self.redis.url),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_api()
        self.owners = self._wait_owners()
        self._wait_full()

    def _worker_settings(self) -> dict[str, str]:
        if not self.environments:
            return {}
        return {"GRADER_QUEUE__ENVIRONMENTS": json.dumps(self.environments)}

    def _wait_api(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api is not None and self.api.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{self.tail('api.log')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the API did not answer in {timeout:.0f} s")

    def _wait_owners(self, timeout: float = 60.0) -> list[str]:
        """The sandbox owner of every Celery pool process, from the worker's log."""
        assert self.worker is not None  # noqa: S101
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.worker.tail(400).splitlines()
            ready = [line for line in log if "worker_process_ready" in line]
            owners = sorted({owner for line in ready for owner in _OWNER.findall(line)})
            if len(owners) >= self.worker_concurrency:
                return owners
            time.sleep(0.2)
        raise RuntimeError(f"worker processes not ready:\n{self.worker.tail()}")

    def _wait_full(self, timeout: float = 180.0) -> None:
        """Until every worker process's pool has its containers again, each one ready.

        The pools live in the Celery processes, out of sight: a container counts as ready
        when its cgroup's CPU counter stands still (the harness waits on stdin after the
        pre-import). Where no cgroup counter is found, READY_GRACE seconds are waited.
        """
        client = docker.from_env(timeout=60)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                running = [
                    [
                        c
                        for c in client.api.containers(
                            filters={"label": f"{LABEL_OWNER}={owner}", "status": "running"}
                        )
                        if _harness_alive(client, str(c["Id"]))
                    ]
                    for owner in self.owners
                ]
                if all(self._full(found) for found in running):
                    if _all_idle([str(c["Id"]) for found in running for c in found]):
                        return
                    continue
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"worker pools did not refill in {timeout:.0f} s")

    def _full(self, containers: list[dict[str, Any]]) -> bool:
        """One process's containers cover its pool: per profile, used judges count too."""
        counts: dict[str, int] = {}
        for container in containers:
            profile = (container.get("Labels") or {}).get(LABEL_PROFILE, "")
            counts[profile] = counts.get(profile, 0) + 1
        return all(counts.get(profile, 0) >= n for profile, n in self.per_profile.items())

    def tail(self, name: str, lines: int = 40) -> str:
        path = Path(self.folder.name) / name
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # phases ---------------------------------------------------------------------------------

    def before_phase(self, workload: Workload, plan: PhasePlan) -> None:
        self._wait_full()

    def settle(self) -> None:
        self._wait_full()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, headers=AUTH, timeout=60)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def submit(self, workload: Workload) -> Sample:
        client = self._client()
        started = time.monotonic()
        sent_at = time.time()
        created = client.post(
            "/v1/submissions",
            params={"wait": 30},
            json={"challenge_id": workload.challenge_id, "code": workload.code},
        )
        if created.status_code not in (200, 202):
            latency = time.monotonic() - started
            return Sample(latency, False, error=f"POST {created.status_code}: {created.text[:200]}")
        submission_id = created.json()["id"]
        body: dict[str, Any] = created.json()
        while body["status"] not in ("done", "failed") and time.monotonic() - started < 120:
            response = client.get(f"/v1/submissions/{submission_id}", params={"wait": 30})
            response.raise_for_status()
            body = response.json()
        latency = time.monotonic() - started
        return self._sample(workload, body, latency, (sent_at, time.time()))

    def _sample(
        self, workload: Workload, body: dict[str, Any], latency: float, client: tuple[float, float]
    ) -> Sample:
        """The submission's final answer as a sample (a subclass may check more)."""
        return _sample(workload, body, latency, client)

    def worker_log(self) -> str:
        """The Celery worker's whole log so far (JSON lines; gone after ``close``)."""
        path = Path(self.folder.name) / "worker.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")
        return ""

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        if self.api is not None:
            _stop_group(self.api)
            self.api = None
        if self.worker is not None:
            with contextlib.suppress(Exception):
                self.worker.stop()  # SIGTERM: each process drains its pool on the way out
            if self.worker.process is not None:
                with contextlib.suppress(Exception):
                    self.worker.kill()
            self.worker = None
        if self.owners:  # whatever a killed worker left behind
            with contextlib.suppress(Exception):
                sandbox = DockerSandbox.from_env()
                for owner in self.owners:
                    sandbox.reap(owner=owner)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop(graceful=False)
            self.redis = None
        self.folder.cleanup()

    def describe(self) -> dict[str, Any]:
        return {
            "celery_concurrency": self.worker_concurrency,
            "pool_size_per_process": self.pool_size,
            "environments": self.environments or "all",
            "api": "uvicorn grader.api.app:create_app (1 process) on 127.0.0.1",
            "redis": "redis-server, appendonly yes, appendfsync always (as in grader/testing.py)",
        }


_CPU_COUNTERS = (
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",  # v1, cgroupfs driver
    "/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage",  # v1, systemd
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",  # v2, systemd
    "/sys/fs/cgroup/docker/{id}/cpu.stat",  # v2, cgroupfs
)
IDLE_WINDOW = 0.15


def _cpu_usage(container_id: str) -> int | None:
    """The container's CPU counter (ns or usec, only compared with itself), if readable."""
    for pattern in _CPU_COUNTERS:
        path = Path(pattern.format(id=container_id))
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.name == "cpu.stat":
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value)
            continue
        return int(text.strip())
    return None


def _harness_alive(client: docker.DockerClient, container_id: str) -> bool:
    """Whether the container's PID 1 (its harness) still lives.

    The engine lists a container as running for a moment after its harness exited (a run
    that just ended, its CPU counter already still): counted, it passed for a ready one.
    """
    try:
        pid = int(client.api.inspect_container(container_id)["State"]["Pid"])
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        state = stat.rpartition(")")[2].split()[0]
    except (docker.errors.DockerException, OSError, ValueError, IndexError, KeyError):
        return False
    return pid > 0 and state not in ("Z", "X")


def _all_idle(container_ids: list[str]) -> bool:
    """Whether none of the containers used CPU over IDLE_WINDOW (so each harness is ready)."""
    before = {i: _cpu_usage(i) for i in container_ids}
    if any(v is None for v in before.values()):
        time.sleep(READY_GRACE)  # no counters on this host: fall back to a fixed grace
        return True
    time.sleep(IDLE_WINDOW)
    return all(_cpu_usage(i) == v for i, v in before.items())


def _parts(
    body: dict[str, Any], observation: dict[str, Any], client: tuple[float, float]
) -> dict[str, float]:
    """Where the time went, from the submission's own timestamps (one host, one clock).

    ``accept``: the POST sent to the record created (HTTP, auth, rate limit); ``queued``: to
    the worker starting it; ``worker``: to the verdict stored; ``answer``: from there to the
    client holding it (the publish, the API waking, the response).
    """
    stamps = {}
    for name in ("created_at", "started_at", "finished_at"):
        value = body.get(name)
        if value:
            stamps[name] = datetime.fromisoformat(value).timestamp()
    parts: dict[str, float] = {}
    if "created_at" in stamps:
        parts["accept"] = stamps["created_at"] - client[0]
    if "created_at" in stamps and "started_at" in stamps:
        parts["queued"] = stamps["started_at"] - stamps["created_at"]
    if "started_at" in stamps and "finished_at" in stamps:
        parts["worker"] = stamps["finished_at"] - stamps["started_at"]
    if "finished_at" in stamps:
        parts["answer"] = client[1] - stamps["finished_at"]
    if observation.get("wall_seconds") is not None:
        parts["harness_run"] = float(observation["wall_seconds"])
    return parts


def _sample(
    workload: Workload, body: dict[str, Any], latency: float, client: tuple[float, float]
) -> Sample:
    result = body.get("result") or {}
    observation = result.get("observation") or {}
    peak = observation.get("peak_memory_bytes")
    hit = observation.get("pool_hit")
    ok, error = _checked(workload, body, result, observation)
    return Sample(latency, ok, peak, hit, error, _parts(body, observation, client))


def _checked(
    workload: Workload, body: dict[str, Any], result: dict[str, Any], observation: dict[str, Any]
) -> tuple[bool, str | None]:
    if body.get("status") != "done":
        return False, f"submission {body.get('status')}: {body.get('error')}"
    if observation.get("status") != "completed":
        return False, f"run {observation.get('status')}: {observation.get('error')}"
    if workload.mode.value == "pytest" and result.get("status") != "passed":
        return False, f"verdict {result.get('status')}: {result.get('reason')}"
    if not workload.stdout_ok((observation.get("stdout") or {}).get("text", "")):
        return False, "unexpected stdout"
    return True, None


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started (its own session), then SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


class EndToEndReuse(EndToEnd):
    """The same path with the workers in reuse mode ``same-key`` (the bench's one API key)."""

    key = "e2e-reuse"
    label = "ours: HTTP end to end, reuse mode same-key, warm pool"

    def _worker_settings(self) -> dict[str, str]:
        return {
            **super()._worker_settings(),
            "GRADER_SANDBOX__REUSE__MODE": "same-key",
            "GRADER_SANDBOX__REUSE__IDLE_PER_KEY": str(max(self.pool_size, 2)),
        }


class EndToEndBefore(EndToEnd):
    """The strict path again, its sandboxes from another build's images (``--before``).

    Issue 18's strict-mode target is a cut against the images as they were: the same API,
    worker and runner code, only the environment images differ (built from an earlier commit
    into another repository with ``GRADER_IMAGES__REPOSITORY``).
    """

    key = "e2e-before"
    label = "ours: HTTP end to end, warm pool, images from before issue 18's cut"

    def __init__(self, *, repository: str, worker_concurrency: int, pool_size: int) -> None:
        self.repository = repository  # before the base class asks for the worker's settings
        super().__init__(worker_concurrency=worker_concurrency, pool_size=pool_size)

    def _worker_settings(self) -> dict[str, str]:
        return {**super()._worker_settings(), "GRADER_IMAGES__REPOSITORY": self.repository}
