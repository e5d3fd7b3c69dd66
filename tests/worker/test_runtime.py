"""The worker's heartbeat: written to Redis and, for the container's health check, to a file."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.adapters.store import SubmissionStore
from grader.testing import RedisServer
from tests.worker.support import printing, runtime_with


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    created = SubmissionStore.from_url(redis_server.url, 3600)
    yield created
    created.client.close()


def _beat_once(runtime_file: Path | None, store: SubmissionStore, url: str) -> None:
    current = runtime_with(store, printing("2\n"), url)
    current.heartbeat_file = runtime_file
    thread = threading.Thread(target=current.heartbeat)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not store.client.exists(f"grader:worker:{current.name}"):
        time.sleep(0.01)
    current.stopping.set()
    thread.join(timeout=10)


def test_a_heartbeat_that_reached_redis_touches_the_health_file(
    tmp_path: Path, store: SubmissionStore, redis_server: RedisServer
) -> None:
    """After a beat stored in Redis, the health check's file is fresh (its mtime is now)."""
    health = tmp_path / "heartbeat"
    health.touch()
    os.utime(health, (0, 0))
    _beat_once(health, store, redis_server.url)
    assert time.time() - health.stat().st_mtime < 10


def test_a_heartbeat_that_failed_leaves_the_health_file_stale(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With Redis unreachable, the beat fails and the file keeps its old mtime: unhealthy."""
    health = tmp_path / "heartbeat"
    health.touch()
    os.utime(health, (0, 0))
    dead = SubmissionStore.from_url("redis://127.0.0.1:1/0", 3600)
    current = runtime_with(dead, printing("2\n"), "redis://127.0.0.1:1/0")
    current.heartbeat_file = health
    thread = threading.Thread(target=current.heartbeat)
    thread.start()
    time.sleep(0.5)
    current.stopping.set()
    thread.join(timeout=30)
    assert health.stat().st_mtime == 0
