"""The per-key rate limit: a sliding 60 s window in the real Redis, on a clock the test sets."""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator

import limits.storage.redis
import pytest

import grader.adapters.cluster
from grader.adapters.store import SubmissionStore
from grader.api.security import RateLimiter
from grader.errors import RateLimited
from grader.settings import ApiKey
from grader.testing import RedisServer


class Clock:
    """``time.time`` for the limiter and its storage: only the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # The start of a minute, as the old fixed window counted minutes.
    fake = Clock(60 * 29_000_000.0)
    module = types.SimpleNamespace(time=fake.time)
    monkeypatch.setattr(limits.storage.redis, "time", module)
    monkeypatch.setattr(grader.adapters.cluster, "time", module)
    return fake


@pytest.fixture
def limiter(redis_server: RedisServer) -> Iterator[RateLimiter]:
    store = SubmissionStore.from_url(redis_server.url, 3600)
    yield RateLimiter(store, default_per_minute=3)
    store.close()


def key() -> ApiKey:
    return ApiKey(id=f"rate-{uuid.uuid4().hex[:8]}", sha256="0" * 64)


def outcomes(limiter: RateLimiter, key: ApiKey, count: int) -> list[int | None]:
    """``None`` for each hit let through, the Retry-After of each refused one."""
    answers: list[int | None] = []
    for _ in range(count):
        try:
            limiter.hit(key)
        except RateLimited as exc:
            answers.append(exc.retry_after)
        else:
            answers.append(None)
    return answers


def test_no_double_burst_across_a_minute_boundary(clock: Clock, limiter: RateLimiter) -> None:
    """Three hits at :59 and three more at :01 of the next minute: the second three are
    refused (a fixed window let six through in two seconds), each told to wait 58 s."""
    platform = key()
    clock.now += 59.0
    assert outcomes(limiter, platform, 3) == [None, None, None]
    clock.now += 2.0  # a new minute has begun
    assert outcomes(limiter, platform, 3) == [58, 58, 58]


def test_hits_become_available_as_each_leaves_the_window(
    clock: Clock, limiter: RateLimiter
) -> None:
    """Hits at 0, 10 and 20 s: at 60.5 s one slot is free again, at 70.5 s the next."""
    platform = key()
    for offset in (0.0, 10.0, 10.0):
        clock.now += offset
        assert outcomes(limiter, platform, 1) == [None]
    clock.now += 40.5  # 60.5 s after the first hit
    assert outcomes(limiter, platform, 2) == [None, 10]
    clock.now += 10.0
    assert outcomes(limiter, platform, 2) == [None, 10]


def test_a_refused_request_takes_nothing(clock: Clock, limiter: RateLimiter) -> None:
    """Hammering a full window does not push its end further away."""
    platform = key()
    assert outcomes(limiter, platform, 3) == [None, None, None]
    clock.now += 30.0
    assert outcomes(limiter, platform, 20) == [30] * 20
    clock.now += 30.5
    assert outcomes(limiter, platform, 4) == [None, None, None, 60]


def test_a_batch_costs_one_hit_per_item(clock: Clock, limiter: RateLimiter) -> None:
    """A batch of two fits in a limit of three once, not twice; over the limit, it is refused
    whole."""
    platform = key()
    limiter.hit(platform, cost=2)
    with pytest.raises(RateLimited) as refused:
        limiter.hit(platform, cost=2)
    assert refused.value.retry_after == 60
    limiter.hit(platform, cost=1)
    with pytest.raises(RateLimited):
        limiter.hit(platform, cost=4)


def test_each_key_has_its_own_window(clock: Clock, limiter: RateLimiter) -> None:
    """One key at its limit leaves another key's window untouched."""
    first, second = key(), key()
    assert outcomes(limiter, first, 4) == [None, None, None, 60]
    assert outcomes(limiter, second, 3) == [None, None, None]
