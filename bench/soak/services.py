"""The real service for the soak: redis-server, uvicorn with the API, several Celery workers.

Redis runs as compose runs it (append-only, ``appendfsync always``, no RDB snapshots) from
``grader.testing.RedisServer``, on one port and folder for its whole life, so a restart finds
its data. Workers are ``grader.testing.WorkerProcess``es. A supervisor thread restarts any
worker (and the API) that died, a second after noticing, as compose's ``restart:`` would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from grader.sandbox import DockerSandbox
from grader.settings import Settings
from grader.testing import ROOT, RedisServer, WorkerProcess, free_port, worker_env

RESTART_DELAY = 1.0
"""Seconds between noticing a dead process and starting it again."""


@dataclass
class Service:
    """Everything the soak drives, and the log of what happened to it."""

    folder: Path
    deployment: str
    """The sandbox label of this run's workers; only its containers are reaped at the end."""
    workers: int = 2
    concurrency: int = 1
    pool_size: int = 1
    redis: RedisServer = field(init=False)
    worker_processes: list[WorkerProcess] = field(default_factory=list)
    api: subprocess.Popen[bytes] | None = None
    api_port: int = field(default_factory=free_port)
    restarts: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watcher: threading.Thread | None = None

    def __post_init__(self) -> None:
        (self.folder / "redis").mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.folder / "redis")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # start and stop -----------------------------------------------------------------------

    def start(self) -> None:
        self.redis.start()
        for index in range(self.workers):
            worker = WorkerProcess(
                self.redis.url,
                self.folder / f"worker-{index + 1}.log",
                name=f"soak{index + 1}",
                pool_size=self.pool_size,
                concurrency=self.concurrency,
                env={"GRADER_SANDBOX__DEPLOYMENT": self.deployment},
            )
            self.worker_processes.append(worker)
            worker.start(wait=False)
        self._start_api()
        self._wait_api()
        for worker in self.worker_processes:
            worker.wait_ready(timeout=180)
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._watcher.start()

    def _start_api(self) -> None:
        with (self.folder / "api.log").open("ab") as log:
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
                    str(self.api_port),
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

    def _wait_api(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the API did not answer in {timeout:.0f} s")

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        if self.api is not None:
            _stop_group(self.api)
            self.api = None
        for worker in self.worker_processes:
            with contextlib.suppress(Exception):
                worker.stop()
            if worker.process is not None:
                with contextlib.suppress(Exception):
                    worker.kill()
        with contextlib.suppress(Exception):
            self.redis.stop(graceful=False)
        with contextlib.suppress(Exception):  # whatever a killed worker left behind
            settings = Settings()
            sandbox = settings.sandbox.model_copy(update={"deployment": self.deployment})
            DockerSandbox.from_settings(sandbox, settings.images.repository).reap()

    # faults -------------------------------------------------------------------------------

    def kill_worker(self, index: int) -> int:
        """SIGKILL worker ``index`` (its main process and pool, like ``docker kill``); the
        supervisor starts it again. Returns the killed process id."""
        with self._lock:
            worker = self.worker_processes[index]
            pid = worker.process.pid if worker.process is not None else -1
            worker.kill()
        return pid

    def kill_worker_child(self, index: int) -> int | None:
        """SIGKILL one pool process of worker ``index`` (Celery replaces it)."""
        worker = self.worker_processes[index]
        if worker.process is None:
            return None
        children = _children(worker.process.pid)
        if not children:
            return None
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def kill_redis(self) -> None:
        """SIGKILL redis-server: what was acknowledged is in the append-only file."""
        self.redis.stop(graceful=False)

    def start_redis(self) -> None:
        self.redis.start()

    # the supervisor -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for index, worker in enumerate(self.worker_processes):
                with self._lock:
                    dead = worker.process is None or worker.process.poll() is not None
                    if dead and not self._stop.is_set():
                        if worker.process is not None:  # exited alone: its pool goes too
                            with contextlib.suppress(ProcessLookupError):
                                os.killpg(worker.process.pid, signal.SIGKILL)
                            worker.process = None
                        time.sleep(RESTART_DELAY)
                        worker.start(wait=False)
                        name = f"worker-{index + 1}"
                        self.restarts[name] = self.restarts.get(name, 0) + 1
            if self.api is not None and self.api.poll() is not None and not self._stop.is_set():
                self._start_api()
                self.restarts["api"] = self.restarts.get("api", 0) + 1

    def tail(self, name: str, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            text = (self.folder / name).read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


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
