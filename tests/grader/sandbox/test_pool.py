"""The warm pool's bookkeeping, with fake sandboxes (the real path is in tests/integration)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from grader.domain import Limits
from grader.errors import SandboxError
from grader.sandbox import Activity, WarmPool


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

    def pool(
        self,
        size: int,
        envs: tuple[str, ...] = ("a", "b"),
        activity: Activity | None = None,
        defer_max: float = 5.0,
        sizes: dict[str, int] | None = None,
    ) -> WarmPool[str, Fake]:
        return WarmPool(
            start=self.start,
            destroy=self.destroy,
            alive=lambda item: item.alive,
            accepts=lambda item, limits: item.limits.memory_mib == limits.memory_mib,
            keys=list(envs),
            size=size,
            activity=activity,
            defer_max=defer_max,
            sizes=sizes,
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


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_refill_waits_while_a_run_is_busy() -> None:
    """With a sandbox still ready, the refill waits until no busy scope is open."""
    factory = Factory()
    activity = Activity()
    pool = factory.pool(2, envs=("a",), activity=activity)
    pool.start()
    assert pool.wait_until_full(5)
    with activity.busy():
        assert pool.take("a", Limits()) is not None
        time.sleep(0.3)
        assert pool.ready_count("a") == 1
        assert pool.deferred == 1
    assert pool.wait_until_full(5)
    assert pool.ready_count("a") == 2
    pool.close()


def test_refill_does_not_wait_when_the_key_is_empty() -> None:
    """An empty key would make the next submission start cold: refill at once, busy or not."""
    factory = Factory()
    activity = Activity()
    pool = factory.pool(1, envs=("a",), activity=activity)
    pool.start()
    assert pool.wait_until_full(5)
    with activity.busy():
        assert pool.take("a", Limits()) is not None
        assert _eventually(lambda: pool.ready_count("a") == 1)
    assert pool.deferred == 0
    pool.close()


def test_refill_waits_at_most_defer_max() -> None:
    """Under a load that never pauses, a deferred refill still happens after defer_max."""
    factory = Factory()
    activity = Activity()
    pool = factory.pool(2, envs=("a",), activity=activity, defer_max=0.2)
    pool.start()
    assert pool.wait_until_full(5)
    with activity.busy():
        assert pool.take("a", Limits()) is not None
        started = time.monotonic()
        assert _eventually(lambda: pool.ready_count("a") == 2)
        assert time.monotonic() - started >= 0.15
    pool.close()


def test_wait_quiet_sees_a_pause_between_two_busy_scopes() -> None:
    """A quiet moment counts even if the next scope opened before the waiter woke up."""
    activity = Activity()
    entered, release = threading.Event(), threading.Event()

    def back_to_back() -> None:
        with activity.busy():
            entered.set()
            release.wait(5)
        with activity.busy():
            time.sleep(0.5)

    worker = threading.Thread(target=back_to_back)
    worker.start()
    assert entered.wait(5)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(activity.wait_quiet(5)))
    waiter.start()
    assert _eventually(lambda: len(activity._cond._waiters) == 1)  # type: ignore[attr-defined]
    release.set()
    waiter.join(5)
    assert result == [True]
    assert activity.busy_count == 1  # the second scope is still open
    worker.join(5)
    assert activity.wait_quiet(0) is True
    assert activity.busy_count == 0


def test_wait_quiet_times_out_while_busy() -> None:
    activity = Activity()
    with activity.busy(), activity.busy():
        assert activity.busy_count == 2
        assert activity.wait_quiet(0.05) is False


def test_take_hands_out_the_newest_first() -> None:
    """The most recently started sandbox is handed out first (warmest in the CPU caches)."""
    factory = Factory()
    pool = factory.pool(3, envs=("a",))
    pool.start()
    assert pool.wait_until_full(5)
    pool.close()  # stop refilling; put the items back in their order by hand
    pool._ready["a"].extend(Fake("a", n, Limits()) for n in (10, 11, 12))
    taken = [pool.take("a", Limits()) for _ in range(3)]
    assert [item.number for item in taken if item] == [12, 11, 10]


def test_a_key_can_be_kept_at_fewer_ready_items() -> None:
    """``sizes`` keeps one key below ``size`` (judges: one), the others at ``size``."""
    factory = Factory()
    pool = factory.pool(3, sizes={"b": 1})
    pool.start()
    assert pool.wait_until_full(5)
    time.sleep(0.2)  # the filler had time to overfill, if it would
    assert (pool.ready_count("a"), pool.ready_count("b")) == (3, 1)
    assert (pool.size_of("a"), pool.size_of("b")) == (3, 1)
    assert pool.take("b", Limits()) is not None
    assert pool.wait_until_full(5)
    assert pool.ready_count("b") == 1
    pool.close()
