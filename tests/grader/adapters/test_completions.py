"""One subscription per API process routes verdict announcements on a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio
import redis

from grader.adapters.completions import Completions
from grader.adapters.redis_keys import DONE_CHANNEL
from grader.testing import RedisServer


@pytest_asyncio.fixture
async def completions(redis_server: RedisServer) -> AsyncIterator[Completions]:
    hub = Completions.from_url(redis_server.url)
    yield hub
    await hub.close()


@pytest.fixture
def publisher(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


def announce(publisher: redis.Redis, submission_id: str, body: bytes) -> int:
    return int(publisher.publish(f"{DONE_CHANNEL}{submission_id}", body))


@pytest.mark.asyncio
async def test_a_watcher_gets_its_announcement_and_no_other(
    completions: Completions, publisher: redis.Redis
) -> None:
    """Announcements are routed by submission id; the first watch waits until it is live."""
    async with completions.watch("a") as news:
        assert completions.live is True
        announce(publisher, "b", b"for b")
        announce(publisher, "a", b"for a")
        assert await asyncio.wait_for(news.get(), 5) == b"for a"
        await asyncio.sleep(0.1)
        assert news.empty()


@pytest.mark.asyncio
async def test_every_watcher_of_a_submission_gets_it(
    completions: Completions, publisher: redis.Redis
) -> None:
    async with completions.watch("same") as first, completions.watch("same") as second:
        announce(publisher, "same", b"record")
        got = await asyncio.gather(
            asyncio.wait_for(first.get(), 5), asyncio.wait_for(second.get(), 5)
        )
    assert list(got) == [b"record", b"record"]


@pytest.mark.asyncio
async def test_many_watchers_share_one_subscription(
    completions: Completions, publisher: redis.Redis
) -> None:
    """Fifty waiting requests hold one Redis connection, not fifty."""
    async with completions.watch("0"):
        pass
    before = len(publisher.client_list(_type="pubsub"))
    async with AsyncExitStack() as stack:
        queues = [await stack.enter_async_context(completions.watch(str(i))) for i in range(50)]
        during = len(publisher.client_list(_type="pubsub"))
        assert announce(publisher, "49", b"last") == 1  # one receiver: the shared subscription
        assert await asyncio.wait_for(queues[-1].get(), 5) == b"last"
    assert (before, during) == (1, 1)


@pytest.mark.asyncio
async def test_it_resubscribes_after_losing_its_connection(
    completions: Completions, publisher: redis.Redis
) -> None:
    """Killed by Redis (a restart, a failover), the subscription comes back on its own."""
    async with completions.watch("x"):
        assert completions.live is True
    killed = publisher.client_kill_filter(_type="pubsub")
    assert killed == 1
    for _ in range(100):  # until it has noticed; announcements until then are lost
        if not completions.live:
            break
        await asyncio.sleep(0.05)
    assert completions.live is False
    async with completions.watch("x") as news:  # waits until it is live again
        assert completions.live is True
        announce(publisher, "x", b"after the reconnect")
        assert await asyncio.wait_for(news.get(), 5) == b"after the reconnect"


@pytest.mark.asyncio
async def test_watching_stops_at_the_end_of_the_block(
    completions: Completions, publisher: redis.Redis
) -> None:
    async with completions.watch("gone") as news:
        pass
    announce(publisher, "gone", b"late")
    await asyncio.sleep(0.1)
    assert news.empty()
