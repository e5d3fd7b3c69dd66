"""Per-process state of a worker: settings, store, sandbox with its warm pool, challenges."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from grader.adapters.bank import ChallengeBank, PublishedChallenges
from grader.adapters.queue import TaskQueue
from grader.adapters.store import SubmissionStore
from grader.domain.challenge import Challenge
from grader.domain.environment import discover
from grader.domain.loader import load_challenges
from grader.domain.sandbox import Sandbox
from grader.errors import GraderError, StoreError
from grader.sandbox import DockerSandbox, EnvironmentImage
from grader.settings import Settings, get_settings

from .sweeper import sweep_forever
from .timing import HEARTBEAT_SECONDS, HEARTBEAT_TTL_SECONDS, Budget, budget

log = structlog.get_logger(__name__)
HEARTBEAT_FILE = Path("/tmp/grader-worker-heartbeat")  # noqa: S108  the worker's own /tmp
"""Touched after every heartbeat that reached Redis: the compose health check reads its age
(a ``find`` in the container, instead of starting a Celery client every 10 seconds)."""


class WorkerSandbox(Sandbox, Protocol):
    """What the worker uses of a sandbox: ``DockerSandbox``, or ``FakeSandbox`` in unit tests."""

    def busy(self) -> AbstractContextManager[None]: ...

    def resolve(self, environment: str) -> EnvironmentImage: ...

    def count_containers(self, *, owner: str | None = None) -> int: ...

    def close(self) -> None: ...


def process_name() -> str:
    """This worker process, as its heartbeat and the submissions it runs name it. The token
    tells a restarted container's processes (same hostname, same pids) from the dead ones."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Runtime:
    settings: Settings
    store: SubmissionStore
    queue: TaskQueue
    sandbox: WorkerSandbox
    challenges: Mapping[str, Challenge]
    """The published challenges (``PublishedChallenges`` on the bank; a dict in unit tests)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    name: str = field(default_factory=process_name)
    bank: ChallengeBank | None = None
    heartbeat_file: Path | None = HEARTBEAT_FILE

    @property
    def budget(self) -> Budget:
        return budget(self.settings)

    def heartbeat(self) -> None:
        """Tell the API (``/readyz``) and the sweepers this process is alive, and whether its
        Docker engine answers. Sweepers re-queue what a process without a heartbeat ran."""
        while not self.stopping.is_set():
            try:
                docker_ok = self.sandbox.count_containers() >= 0
            except GraderError:
                docker_ok = False
            try:
                self.store.beat(self.name, docker=docker_ok, ttl=HEARTBEAT_TTL_SECONDS)
                self._touch_heartbeat_file()
            except GraderError as exc:
                log.warning("heartbeat_failed", error=str(exc))
            except Exception:  # a silent heartbeat would get this process's work re-queued
                log.exception("heartbeat_crashed")
            self.stopping.wait(HEARTBEAT_SECONDS)

    def _touch_heartbeat_file(self) -> None:
        """Say "alive and reaching Redis" where the container's health check looks (its mtime)."""
        if self.heartbeat_file is None:
            return
        try:
            self.heartbeat_file.touch()
        except OSError as exc:
            log.warning("heartbeat_file_failed", path=str(self.heartbeat_file), error=str(exc))


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
    bundled = load_challenges([settings.api.challenges_root], environments)
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
    bank = ChallengeBank(store.client, settings.api.retention_seconds)
    challenges = PublishedChallenges(bank, bundled)
    with suppress(StoreError):  # seeds an empty bank now; else on first use
        challenges.current()
    for name in served:  # what /v1/environments shows: the image each environment runs
        try:
            image = sandbox.resolve(name)
        except GraderError as exc:
            log.warning("environment_unavailable", environment=name, error=str(exc))
            continue
        store.publish_environment(name, image.image_id, image.packages)
    built = Runtime(settings, store, TaskQueue(settings), sandbox, challenges, bank=bank)
    threading.Thread(target=built.heartbeat, name="heartbeat", daemon=True).start()
    threading.Thread(target=sweep_forever, args=(built,), name="sweeper", daemon=True).start()
    log.info(
        "worker_process_ready",
        environments=served,
        bundled=len(bundled),
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
