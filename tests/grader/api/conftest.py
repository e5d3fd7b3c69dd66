"""Fixtures of the API tests: the app itself (to reach its state), and what Redis holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
import redis
from fastapi import FastAPI

from grader.adapters.queue import queue_for
from grader.adapters.redis_keys import SUBMISSION
from grader.api.app import create_app
from grader.testing import RedisServer, service_settings

Q4_ENVIRONMENT = "fastapi-0.115-httpx-0.27"
"""Where async-test-mastery/q4-counter-after-test runs: its runs wait in this queue."""


@dataclass(frozen=True)
class Ledger:
    """What a request left behind: submissions stored, runs waiting in the queue."""

    stored: int
    queued: int


def ledger_of(client: redis.Redis) -> Ledger:
    stored = sum(1 for _ in client.scan_iter(match=f"{SUBMISSION}*", count=1000))
    return Ledger(stored=stored, queued=int(client.llen(queue_for(Q4_ENVIRONMENT))))


@pytest.fixture
def ledger(redis_server: RedisServer) -> Iterator[Callable[[], Ledger]]:
    """Counts what Redis holds now: call it before and after a request."""
    client = redis.Redis.from_url(redis_server.url)
    yield lambda: ledger_of(client)
    client.close()


@pytest_asyncio.fixture
async def app(redis_server: RedisServer) -> AsyncIterator[FastAPI]:
    """The app on the session's Redis, for tests that reach into its state."""
    created = create_app(service_settings(redis_server.url))
    yield created
    await created.state.grader.completions.close()
    created.state.grader.store.close()


def client_for(app: FastAPI, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://grader")
