"""Per-process state of a worker: settings, store, sandbox with its warm pool, challenges."""

from __future__ import annotations

import os
import socket
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from grader.adapters.queue import TaskQueue
from grader.adapters.store import SubmissionStore
from grader.domain.challenge import Challenge
from grader.domain.environment import discover
from grader.domain.loader import load_challenges
from grader.domain.sandbox import Sandbox
from grader.errors import GraderError
from grader.sandbox import DockerSandbox, EnvironmentImage
from grader.settings import Settings, get_settings

log = structlog.get_logger(__name__)
HEARTBEAT_SECONDS = 10


class WorkerSandbox(Sandbox, Protocol):
    """What the worker uses of a sandbox: ``DockerSandbox``, or ``FakeSandbox`` in unit tests."""

    def busy(self) -> AbstractContextManager[None]: ...

    def resolve(self, environment: str) -> EnvironmentImage: ...

    def count_containers(self, *, owner: str | None = None) -> int: ...

    def close(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    store: SubmissionStore
    queue: TaskQueue
    sandbox: WorkerSandbox
    challenges: dict[str, Challenge]
    stopping: threading.Event = field(default_factory=threading.Event)

    def heartbeat(self) -> None:
        """Tell the API (``/readyz``) this process is alive and its Docker engine answers."""
        name = f"{socket.gethostname()}:{os.getpid()}"
        while not self.stopping.is_set():
            try:
                docker_ok = self.sandbox.count_containers() >= 0
            except GraderError:
                docker_ok = False
            try:
                self.store.beat(name, docker=docker_ok, ttl=3 * HEARTBEAT_SECONDS)
            except GraderError as exc:
                log.warning("heartbeat_failed", error=str(exc))
            self.stopping.wait(HEARTBEAT_SECONDS)


_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime, created on first use (after the fork)."""
    global _runtime  # noqa: PLW0603  one per process by design
    with _lock:
        if _runtime is None:
            _runtime = _build(get_settings())
        return _runtime


def _build(settings: Settings) -> Runtime:
    environments = list(discover(settings.images.root))
    served = settings.queue.environments or environments
    challenges = {
        c.qualified_id: c for c in load_challenges([settings.api.challenges_root], environments)
    }
    sandbox = DockerSandbox.from_settings(settings.sandbox, repository=settings.images.repository)
    sandbox.start_reaper(settings.sandbox.reap_interval_seconds)
    if settings.sandbox.pool_size:
        sandbox.start_pool(
            served,
            size=settings.sandbox.pool_size,
            limits=settings.sandbox.defaults,
            ttl=settings.sandbox.pool_ttl_seconds,
        )
    store = SubmissionStore.from_url(settings.redis.url, settings.api.retention_seconds)
    for name in served:  # what /v1/environments shows: the image each environment runs
        try:
            image = sandbox.resolve(name)
        except GraderError as exc:
            log.warning("environment_unavailable", environment=name, error=str(exc))
            continue
        store.publish_environment(name, image.image_id, image.packages)
    built = Runtime(settings, store, TaskQueue(settings), sandbox, challenges)
    threading.Thread(target=built.heartbeat, name="heartbeat", daemon=True).start()
    log.info(
        "worker_process_ready",
        environments=served,
        challenges=len(challenges),
        pool_size=settings.sandbox.pool_size,
        owner=sandbox.owner,
    )
    return built


def shutdown_runtime() -> None:
    global _runtime  # noqa: PLW0603
    with _lock:
        if _runtime is not None:
            _runtime.stopping.set()
            _runtime.sandbox.close()
            _runtime = None
