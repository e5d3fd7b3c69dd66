"""What the cluster shares in Redis besides submissions: counters, rate windows, queue depths,
and what workers publish about themselves (heartbeats, the environments they run).

``SubmissionStore`` (``store.py``) builds on this; every Redis error becomes ``StoreError``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Self

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from ..errors import StoreError
from .redis_keys import ENVIRONMENT, HEARTBEAT, LATENCY, RATE, STATS

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ClusterStore:
    """One Redis client and the records every process of the service shares."""

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        self._redis = client
        self._retention = retention_seconds
        # The ``limits`` library's moving window: a list of hit times per key, checked and
        # appended in one Lua script, on this client's own connections.
        self._rate_storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix=RATE.rstrip(":")
        )
        self._rates = MovingWindowRateLimiter(self._rate_storage)

    @classmethod
    def from_url(
        cls,
        url: str,
        retention_seconds: int,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> Self:
        """A store on ``url``; the API passes tight timeouts so an outage is a quick 503."""
        client = redis.Redis.from_url(
            url, socket_timeout=read_timeout, socket_connect_timeout=connect_timeout
        )
        return cls(client, retention_seconds)

    @property
    def client(self) -> redis.Redis:
        """The Redis client itself, for tests and diagnostics."""
        return self._redis

    def close(self) -> None:
        self._redis.close()

    def count(self, name: str) -> None:
        try:
            self._redis.hincrby(STATS, name, 1)
        except redis.RedisError as exc:
            raise StoreError(f"cannot count {name}: {exc}") from None

    def stats(self) -> tuple[dict[str, float], dict[str, float]]:
        try:
            raw_stats: dict[Any, Any] = dict(self._redis.hgetall(STATS))
            raw_latency: dict[Any, Any] = dict(self._redis.hgetall(LATENCY))
        except redis.RedisError as exc:
            raise StoreError(f"cannot read statistics: {exc}") from None
        return decode(raw_stats), decode(raw_latency)

    def take_rate(self, key_id: str, per_minute: int, cost: int = 1) -> int | None:
        """Take ``cost`` hits from one key's sliding 60 s window: ``None`` if they fit, else
        the seconds until they would (a refused request takes nothing).

        A sliding window counts the 60 s before each request, so a key cannot spend its limit
        at the end of one minute and again at the start of the next.
        """
        item = RateLimitItemPerMinute(per_minute)
        try:
            if self._rates.hit(item, key_id, cost=cost):
                return None
            oldest, _ = self._rate_storage.get_moving_window(
                item.key_for(key_id), per_minute, item.get_expiry()
            )
        except redis.RedisError as exc:
            raise StoreError(f"rate limiter unavailable: {exc}") from None
        return max(1, math.ceil(float(oldest) + item.get_expiry() - time.time()))

    def queue_depth(self, queue: str) -> int:
        """Tasks waiting in one Celery queue (a Redis list named after it)."""
        try:
            return int(self._redis.llen(queue))
        except redis.RedisError as exc:
            raise StoreError(f"cannot read the depth of {queue}: {exc}") from None

    # what workers publish about themselves --------------------------------------------------

    def beat(self, worker: str, *, docker: bool, ttl: int) -> None:
        """A worker process is alive (for ``ttl`` seconds) and whether its engine answers."""
        try:
            self._redis.set(f"{HEARTBEAT}{worker}", json.dumps({"docker": docker}), ex=ttl)
        except redis.RedisError as exc:
            raise StoreError(f"cannot record the heartbeat of {worker}: {exc}") from None

    def workers(self) -> list[dict[str, Any]]:
        """The live worker processes: ``{"name": "<host>:<pid>:<token>", "docker": bool}`` each."""
        found = []
        try:
            for name in self._redis.scan_iter(match=f"{HEARTBEAT}*", count=100):
                raw = self._redis.get(name)
                if raw:
                    found.append({"name": text(name)[len(HEARTBEAT) :], **json.loads(raw)})
        except redis.RedisError as exc:
            raise StoreError(f"cannot read worker heartbeats: {exc}") from None
        return found

    def publish_environment(self, name: str, image_id: str, packages: dict[str, str]) -> None:
        """What ``/v1/environments`` shows: the image an environment runs on the workers."""
        body = json.dumps({"image_id": image_id, "packages": packages})
        try:
            self._redis.set(f"{ENVIRONMENT}{name}", body)
        except redis.RedisError as exc:
            raise StoreError(f"cannot publish environment {name}: {exc}") from None

    def environments(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """What the workers published for each of ``names`` (absent: not served yet)."""
        found = {}
        try:
            for name in names:
                raw = self._redis.get(f"{ENVIRONMENT}{name}")
                if raw:
                    found[name] = json.loads(raw)
        except redis.RedisError as exc:
            raise StoreError(f"cannot read environment info: {exc}") from None
        return found

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value


def decode(raw: dict[Any, Any]) -> dict[str, float]:
    return {key.decode(): float(value) for key, value in raw.items()}
