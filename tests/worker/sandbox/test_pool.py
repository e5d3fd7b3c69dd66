"""The warm pool's bookkeeping, with fake sandboxes (the real path is in tests/integration)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from grader.domain import Limits
from grader.errors import SandboxError
from worker.sandbox import WarmPool


@dataclass
class Fake:
    env: str
    number: int
    limits: Limits
    alive: bool = True


@dataclass
class Factory:
    limits: Limits = field(default_factory=Limits)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    destroyed: list[int] = field(default_factory=list)
    fail: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, env: str) -> Fake:
        if self.fail:
            raise SandboxError("engine down")
        return Fake(env, next(self.counter), self.limits)

    def destroy(self, item: Fake) -> None:
        with self.lock:
            self.destroyed.append(item.number)

    def pool(self, size: int, envs: tuple[str, ...] = ("a", "b")) -> WarmPool[Fake]:
        return WarmPool(
            start=self.start,
            destroy=self.destroy,
            alive=lambda item: item.alive,
            accepts=lambda item, limits: item.limits.memory_mib == limits.memory_mib,
            environments=list(envs),
            size=size,
        )


def test_fills_every_environment_and_hands_each_item_out_once() -> None:
    """Each environment gets `size` ready items; take never returns the same one twice."""
    factory = Factory()
    pool = factory.pool(2)
    pool.start()
    assert pool.wait_until_full(5)
    taken = [pool.take("a", Limits()) for _ in range(2)]
    assert all(item is not None and item.env == "a" for item in taken)
    assert len({item.number for item in taken if item}) == 2
    pool.close()


def test_refills_after_take() -> None:
    """Taking an item triggers a replacement in the background."""
    factory = Factory()
    pool = factory.pool(1, envs=("a",))
    pool.start()
    assert pool.wait_until_full(5)
    first = pool.take("a", Limits())
    assert pool.wait_until_full(5)
    second = pool.take("a", Limits())
    assert first is not None and second is not None and first.number != second.number
    pool.close()


def test_size_zero_disables_the_pool() -> None:
    """With size 0 nothing is started and take always misses."""
    factory = Factory()
    pool = factory.pool(0)
    pool.start()
    assert pool.take("a", Limits()) is None
    assert next(factory.counter) == 0
    assert (pool.hits, pool.misses) == (0, 1)
    pool.close()


def test_unknown_environment_misses() -> None:
    """An environment the pool does not serve falls back to a cold start (None)."""
    pool = Factory().pool(1)
    assert pool.take("zzz", Limits()) is None


def test_items_with_other_fixed_limits_are_not_handed_out() -> None:
    """A request for different container limits misses and the mismatched item is discarded."""
    factory = Factory()
    pool = factory.pool(1, envs=("a",))
    pool.start()
    assert pool.wait_until_full(5)
    assert pool.take("a", Limits(memory_mib=512)) is None
    assert factory.destroyed == [0]
    pool.close()


def test_dead_items_are_discarded_not_returned() -> None:
    """An item that is no longer alive is destroyed instead of being handed out."""
    factory = Factory()
    pool = factory.pool(1, envs=("a",))
    pool.start()
    assert pool.wait_until_full(5)
    pool.close()  # stop refilling, then put back a dead item by hand
    dead = Fake("a", 99, Limits(), alive=False)
    pool._ready["a"].append(dead)
    assert pool.take("a", Limits()) is None
    assert 99 in factory.destroyed


def test_close_drains_every_waiting_item() -> None:
    """Closing destroys every item still waiting."""
    factory = Factory()
    pool = factory.pool(2)
    pool.start()
    assert pool.wait_until_full(5)
    pool.close()
    assert sorted(factory.destroyed) == [0, 1, 2, 3]
    assert pool.ready_count("a") == pool.ready_count("b") == 0


def test_start_failures_are_survived() -> None:
    """When starting fails the pool stays empty and take misses (cold start fallback)."""
    factory = Factory(fail=True)
    pool = factory.pool(1, envs=("a",))
    pool.start()
    assert pool.wait_until_full(0.5) is False
    assert pool.take("a", Limits()) is None
    pool.close()
