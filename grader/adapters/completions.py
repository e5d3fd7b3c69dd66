"""Verdict announcements for waiting requests: one Redis subscription per API process.

A worker publishes each final record on ``grader:done:<id>`` (see ``store.finish``). Instead of
a connection and a SUBSCRIBE per waiting request, each API process holds one pattern
subscription and hands every announcement to the requests watching that id. A request starts
watching before it queues a submission (``POST ?wait=``) or re-reads one (long-poll), so
nothing published after that passes unseen while the subscription is up. While it is down
(Redis restarting), announcements are lost and waiters fall back to re-reading the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from .redis_keys import DONE_CHANNEL

log = structlog.get_logger(__name__)

LIVE_WAIT = 1.0
"""Seconds a new watcher waits for the subscription to be confirmed (first use, reconnects)."""
RECONNECT_DELAY = 0.5


class Completions:
    """Routes ``grader:done:*`` announcements to the requests watching each submission."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._watchers: dict[str, list[asyncio.Queue[bytes]]] = {}
        self._live = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> Completions:
        return cls(aioredis.Redis.from_url(url))

    @property
    def live(self) -> bool:
        """Whether the subscription is confirmed and announcements are being routed."""
        return self._live.is_set()

    @asynccontextmanager
    async def watch(self, submission_id: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        """A queue of the announcements (record JSON) for ``submission_id`` while inside.

        On return the subscription is live, unless it could not be confirmed within
        ``LIVE_WAIT`` seconds: the caller must re-read the store now and then anyway.
        """
        self._start()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._watchers.setdefault(submission_id, []).append(queue)
        try:
            if not self._live.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._live.wait(), LIVE_WAIT)
            yield queue
        finally:
            queues = self._watchers.get(submission_id, [])
            if queue in queues:
                queues.remove(queue)
            if not queues:
                self._watchers.pop(submission_id, None)

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._listen_forever(), name="completions"
            )

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                log.warning("completions_disconnected", error=str(exc)[:300])
            finally:
                self._live.clear()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen(self) -> None:
        prefix = len(DONE_CHANNEL)
        pubsub = self._client.pubsub()
        try:
            await pubsub.psubscribe(f"{DONE_CHANNEL}*")
            async for message in pubsub.listen():
                kind = message.get("type")
                if kind == "psubscribe":
                    self._live.set()
                elif kind == "pmessage":
                    channel = message["channel"]
                    name = channel.decode() if isinstance(channel, bytes) else str(channel)
                    for queue in self._watchers.get(name[prefix:], ()):
                        queue.put_nowait(message["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
