"""A warm pool: pre-started sandboxes that each take exactly one submission.

Isolation stays strict (one container per run, never reused); the pool only moves the
start-up cost (container start, package imports) off the submission's path. A background
thread keeps ``size`` ready sandboxes per environment, recycles expired ones and drains
everything on ``close``. An empty pool is not an error: the caller starts one cold.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Generic, TypeVar

import structlog

from grader.domain import Limits
from grader.errors import GraderError

T = TypeVar("T")
log = structlog.get_logger(__name__)

_RETRY_AFTER_FAILURE = 5.0


class WarmPool(Generic[T]):
    """Keeps ready sandboxes per environment; ``take`` hands each out exactly once."""

    def __init__(
        self,
        *,
        start: Callable[[str], T],
        destroy: Callable[[T], None],
        alive: Callable[[T], bool],
        accepts: Callable[[T, Limits], bool],
        environments: list[str],
        size: int,
    ) -> None:
        self._start = start
        self._destroy = destroy
        self._alive = alive
        self._accepts = accepts
        self._size = max(size, 0)
        self._ready: dict[str, deque[T]] = {env: deque() for env in environments}
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failed_at: dict[str, float] = {}
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return self._size

    def start(self) -> None:
        """Begin filling in the background (nothing happens when the size is 0)."""
        if self._size == 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._fill_forever, name="warm-pool", daemon=True)
        self._thread.start()

    def take(self, environment: str, limits: Limits) -> T | None:
        """A ready sandbox for ``environment`` whose fixed limits match, or None."""
        with self._lock:
            queue = self._ready.get(environment)
            while queue:
                item = queue.popleft()
                self._lock.notify_all()
                if self._accepts(item, limits) and self._alive(item):
                    self.hits += 1
                    return item
                self._discard(item)
            self.misses += 1
            return None

    def ready_count(self, environment: str) -> int:
        with self._lock:
            return len(self._ready.get(environment, ()))

    def wait_until_full(self, timeout: float) -> bool:
        """Block until every environment has ``size`` ready sandboxes (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(len(q) < self._size for q in self._ready.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._lock.wait(remaining)
            return True

    def close(self) -> None:
        """Stop filling and remove every sandbox still waiting."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            leftovers = [item for queue in self._ready.values() for item in queue]
            for queue in self._ready.values():
                queue.clear()
        for item in leftovers:
            self._discard(item)

    # background ---------------------------------------------------------------------------

    def _fill_forever(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._recycle_expired()
                wanted = self._next_to_fill()
                if wanted is None:
                    self._lock.wait(timeout=1.0)
                    continue
            try:
                item = self._start(wanted)
            except GraderError as exc:
                log.warning("warm_pool_start_failed", environment=wanted, error=str(exc))
                with self._lock:
                    self._failed_at[wanted] = time.monotonic()
                continue
            with self._lock:
                if self._closed:
                    closed = True
                else:
                    closed = False
                    self._ready[wanted].append(item)
                    self._lock.notify_all()
            if closed:
                self._discard(item)
                return

    def _next_to_fill(self) -> str | None:
        now = time.monotonic()
        candidates = [
            (len(queue), env)
            for env, queue in self._ready.items()
            if len(queue) < self._size
            and now - self._failed_at.get(env, -_RETRY_AFTER_FAILURE) >= _RETRY_AFTER_FAILURE
        ]
        return min(candidates)[1] if candidates else None

    def _recycle_expired(self) -> None:
        for queue in self._ready.values():
            keep = [item for item in queue if self._alive(item)]
            for item in queue:
                if item not in keep:
                    self._discard(item)
            queue.clear()
            queue.extend(keep)

    def _discard(self, item: Any) -> None:
        with suppress(GraderError):
            self._destroy(item)
