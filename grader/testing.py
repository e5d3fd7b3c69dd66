"""Real services for tests: a redis-server, a Celery worker process, the API app.

Each is the production program started for the test (no fakes): ``redis-server`` from Debian
packages, ``celery -A worker.celery_app worker`` as a child process, the FastAPI app in-process
behind ``httpx.ASGITransport``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from grader.api.security import hash_key
from grader.settings import ApiKey, ApiSettings, QueueSettings, RedisSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
SUBMITTER_KEY = "grd_test_submitter_" + "s" * 24
OTHER_KEY = "grd_test_other_" + "o" * 28
INSTRUCTOR_KEY = "grd_test_instructor_" + "i" * 24
ADMIN_KEY = "grd_test_admin_" + "a" * 28
WEBHOOK_SECRET = "w" * 40
KEYS = [
    {
        "id": "platform",
        "sha256": hash_key(SUBMITTER_KEY),
        "role": "submitter",
        "webhook_secret": WEBHOOK_SECRET,
        "rate_per_minute": 1000,
        "runs": True,
    },
    {"id": "other", "sha256": hash_key(OTHER_KEY), "role": "submitter", "rate_per_minute": 3},
    {"id": "teacher", "sha256": hash_key(INSTRUCTOR_KEY), "role": "instructor"},
    {"id": "ops", "sha256": hash_key(ADMIN_KEY), "role": "admin"},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server with AOF (appendfsync always), on a free port, in its own folder."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run 'make system-deps'")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, *, graceful: bool = True) -> None:
        if self.process is None:
            return
        if graceful:
            with_redis = redis.Redis.from_url(self.url)
            with contextlib.suppress(redis.ConnectionError):
                with_redis.shutdown(nosave=False)
        else:
            self.process.kill()
        self.process.wait(timeout=20)
        self.process = None


def service_settings(redis_url: str, **queue: object) -> Settings:
    return Settings(
        redis=RedisSettings(url=redis_url),
        queue=QueueSettings.model_validate(queue),
        api=ApiSettings(
            keys=[ApiKey.model_validate(k) for k in KEYS], webhook_allow_hosts=["127.0.0.1"]
        ),
    )


PASSED_THROUGH = ("GRADER_IMAGES__", "GRADER_SANDBOX__RUNTIME", "GRADER_SANDBOX__DEPLOYMENT")


def worker_env(
    redis_url: str,
    *,
    pool_size: int = 1,
    visibility: int = 300,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    # The test run's own GRADER_* settings stay out, except where its images are and how and
    # under which deployment label its sandboxes run.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GRADER_") or k.startswith(PASSED_THROUGH)
    }
    env.update(
        {
            "GRADER_REDIS__URL": redis_url,
            "GRADER_API__KEYS": json.dumps(KEYS),
            "GRADER_API__WEBHOOK_ALLOW_HOSTS": json.dumps(["127.0.0.1"]),
            "GRADER_SANDBOX__POOL_SIZE": str(pool_size),
            "GRADER_QUEUE__VISIBILITY_TIMEOUT_SECONDS": str(visibility),
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        }
    )
    return env


@dataclass
class WorkerProcess:
    """``celery -A worker.celery_app worker`` as a child process with its own log file."""

    redis_url: str
    log_path: Path
    name: str = "w1"
    pool_size: int = 1
    visibility: int = 300
    concurrency: int = 1
    env: dict[str, str] = field(default_factory=dict)
    """More environment variables for the worker (``GRADER_*`` settings)."""
    process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "--quiet",  # no banner: every line of the log is a JSON object
            "-A",
            "worker.celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(self.concurrency),
            "--hostname",
            f"{self.name}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        env = worker_env(
            self.redis_url, pool_size=self.pool_size, visibility=self.visibility, extra=self.env
        )
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        """Ready when every pool process has written its heartbeat."""
        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.tail()}")
            beats = list(client.scan_iter(match="grader:worker:*"))
            if len(beats) >= self.concurrency:
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool) at once."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        stop_group(self.process, grace=60)
        self.process = None


@dataclass
class ApiProcess:
    """The API as the service runs it (``uvicorn --factory grader.api.app:serve``), on a free
    port, its log (JSON lines) in a file."""

    redis_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        command = [sys.executable, "-m", "uvicorn", "--factory", "grader.api.app:serve"]
        command += ["--http", "grader.api.http:JsonErrorsH11Protocol"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=worker_env(self.redis_url, extra=self.env),
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                return sock.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self) -> None:
        stop_group(self.process, grace=30)
        self.process = None


def stop_group(process: subprocess.Popen[bytes] | None, *, grace: float) -> None:
    """SIGTERM a child's whole process group; SIGKILL it after ``grace`` seconds."""
    if process is None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def clear_heartbeats(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(match="grader:worker:*"):
        client.delete(name)
