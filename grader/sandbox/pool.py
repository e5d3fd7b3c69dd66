"""A warm pool: pre-started sandboxes that each take exactly one submission.

The pool itself never reuses a container (reuse mode keeps used ones apart: ``reuse.py``);
it only moves the start-up cost (container start, package imports) off the submission's
path. A background thread keeps ``size`` ready sandboxes per key (an environment and a
pre-import profile), recycles expired ones and drains everything on ``close``. An empty pool
is not an error: the caller starts one cold.

Refills are upkeep, and upkeep waits for a quiet moment: a container start next to a run
slows the run (seed Q1: 57 ms alone, 86 ms beside a start on two cores). While any ``busy``
scope of the shared ``Activity`` is open the filler waits, up to ``defer_max`` seconds, unless
a key has nothing left, when the next submission would start cold anyway.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from typing import Generic, TypeVar

import structlog

from ..domain import Limits
from ..errors import GraderError

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
log = structlog.get_logger(__name__)

_RETRY_AFTER_FAILURE = 5.0
_POLL = 0.05
"""Seconds between checks while a refill is deferred (a take may make it urgent)."""


class Activity:
    """Counts the work in progress of one process, so upkeep can wait until it is quiet."""

    def __init__(self) -> None:
        self._count = 0
        self._quiet_epoch = 0
        self._cond = threading.Condition()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """A scope of latency-sensitive work (a run, a whole graded submission)."""
        with self._cond:
            self._count += 1
        try:
            yield
        finally:
            with self._cond:
                self._count -= 1
                if self._count == 0:
                    self._quiet_epoch += 1
                    self._cond.notify_all()

    @property
    def busy_count(self) -> int:
        with self._cond:
            return self._count

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until nothing is busy, or until a quiet moment has passed; False on timeout.

        A quiet moment between two back-to-back submissions counts even when the next one
        began before this thread woke up, so upkeep is never starved by a steady load.
        """
        with self._cond:
            epoch = self._quiet_epoch
            return self._cond.wait_for(
                lambda: self._count == 0 or self._quiet_epoch != epoch, timeout
            )


class WarmPool(Generic[K, T]):
    """Keeps ready sandboxes per key; ``take`` hands each out exactly once."""

    def __init__(
        self,
        *,
        start: Callable[[K], T],
        destroy: Callable[[T], None],
        alive: Callable[[T], bool],
        accepts: Callable[[T, Limits], bool],
        keys: list[K],
        size: int,
        activity: Activity | None = None,
        defer_max: float = 5.0,
        sizes: dict[K, int] | None = None,
    ) -> None:
        self._start = start
        self._destroy = destroy
        self._alive = alive
        self._accepts = accepts
        self._size = max(size, 0)
        self._sizes = {key: max(min(n, self._size), 0) for key, n in (sizes or {}).items()}
        """Keys kept at fewer than ``size`` ready sandboxes."""
        self._ready: dict[K, deque[T]] = {key: deque() for key in keys}
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failed_at: dict[K, float] = {}
        self._activity = activity or Activity()
        self._defer_max = defer_max
        self.hits = 0
        self.misses = 0
        self.deferred = 0
        """How many refills waited for a quiet moment (diagnostics and tests)."""

    @property
    def size(self) -> int:
        return self._size

    def size_of(self, key: K) -> int:
        """How many ready sandboxes ``key`` is kept at."""
        return self._sizes.get(key, self._size)

    def start(self) -> None:
        """Begin filling in the background (nothing happens when the size is 0)."""
        if self._size == 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._fill_forever, name="warm-pool", daemon=True)
        self._thread.start()

    def take(self, key: K, limits: Limits) -> T | None:
        """A ready sandbox for ``key`` whose fixed limits match, or None.

        The most recently started one goes first. On a shared host a sandbox's memory goes
        cold while it waits: the seed's Q1 ran in 60 ms in a container ready for 0.25 s,
        68 ms after 3 s and 87 ms after 8 s. Older ones are recycled at their expiry.
        """
        unusable: list[T] = []
        found: T | None = None
        with self._lock:
            queue = self._ready.get(key)
            while queue:
                item = queue.pop()  # the newest: still warm in the CPU caches
                self._lock.notify_all()
                if self._accepts(item, limits) and self._alive(item):
                    found = item
                    break
                unusable.append(item)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        if found is None:
            log.info("warm_pool_miss", key=str(key), unusable=len(unusable))
        for item in unusable:  # outside the lock: a removal takes a while
            self._discard(item)
        return found

    def ready_count(self, key: K) -> int:
        with self._lock:
            return len(self._ready.get(key, ()))

    def wait_until_full(self, timeout: float) -> bool:
        """Block until every key has ``size`` ready sandboxes (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(len(q) < self.size_of(k) for k, q in self._ready.items()):
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
        deferred_since: float | None = None
        while True:
            with self._lock:
                if self._closed:
                    return
                expired = self._take_expired()
                wanted = self._next_to_fill()
                if wanted is None and not expired:
                    deferred_since = None
                    self._lock.wait(timeout=1.0)
                    continue
                urgent = wanted is not None and not self._ready[wanted]
            for item in expired:  # outside the lock: a removal takes a while
                self._discard(item)
            if wanted is None:
                continue
            if not urgent and self._activity.busy_count:
                now = time.monotonic()
                if deferred_since is None:
                    deferred_since = now
                    self.deferred += 1
                if now - deferred_since < self._defer_max and not self._activity.wait_quiet(_POLL):
                    continue  # still busy: check again (a take may have made it urgent)
            deferred_since = None
            try:
                item = self._start(wanted)
            except GraderError as exc:
                log.warning("warm_pool_start_failed", key=str(wanted), error=str(exc))
                with self._lock:
                    self._failed_at[wanted] = time.monotonic()
                continue
            with self._lock:
                closed = self._closed
                if not closed:
                    self._ready[wanted].append(item)
                    self._lock.notify_all()
            if closed:
                self._discard(item)
                return

    def _next_to_fill(self) -> K | None:
        """The key with the fewest ready sandboxes (first in order on a tie), if any is short."""
        now = time.monotonic()
        best: K | None = None
        fewest = self._size
        for key, queue in self._ready.items():
            failed = self._failed_at.get(key)
            if failed is not None and now - failed < _RETRY_AFTER_FAILURE:
                continue
            if len(queue) < min(fewest, self.size_of(key)):
                best, fewest = key, len(queue)
        return best

    def _take_expired(self) -> list[T]:
        """Remove the sandboxes that are no longer alive from the queues (under the lock)."""
        expired: list[T] = []
        for queue in self._ready.values():
            keep: list[T] = []
            for item in queue:
                (keep if self._alive(item) else expired).append(item)
            if len(keep) < len(queue):
                queue.clear()
                queue.extend(keep)
        return expired

    def _discard(self, item: T) -> None:
        with suppress(GraderError):
            self._destroy(item)
