"""The learner side's one persistent event loop, and ASGI apps driven on it.

Coroutines the judge awaits run on one loop in a background thread, so objects bound to a loop
(an ``httpx.AsyncClient``, an app's state, a lifespan) survive from one request to the next.
The serving thread keeps serving the judge's requests while a coroutine runs.
"""

from __future__ import annotations

import asyncio
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any


class LoopThread:
    """An event loop running forever in a daemon thread, started on first use."""

    def __init__(self, pump: Callable[[Callable[[], bool]], None], wake: Callable[[], None]):
        self._pump = pump
        self._wake = wake
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lifespans: dict[int, Lifespan] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rpc-loop", daemon=True).start()
            self._loop = loop
        return self._loop

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` on the loop; serve the judge meanwhile; its result or exception."""
        future = asyncio.run_coroutine_threadsafe(_await(awaitable), self.loop)
        future.add_done_callback(lambda _: self._wake())
        self._pump(future.done)
        return future.result()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def run_http(app: Any, scope: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    """Run one HTTP request through ``app``; the messages it sent, in order."""
    sent: list[dict[str, Any]] = []
    complete = asyncio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message.get("type") == "http.response.body" and not message.get("more_body"):
            complete.set()

    try:
        await app(scope, receive, send)
    finally:
        complete.set()
    return sent


class Lifespan:
    """An app's lifespan protocol held open across the judge's startup and shutdown calls."""

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.ensure_future(app(scope, self.incoming.get, self.outgoing.put))

    async def step(self, message: dict[str, Any]) -> dict[str, Any]:
        """Deliver ``message``; the app's answer (or its exception if it ended instead)."""
        await self.incoming.put(message)
        answer = asyncio.ensure_future(self.outgoing.get())
        await asyncio.wait({answer, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            return answer.result()
        answer.cancel()
        self.task.result()  # the app's exception, if it raised
        raise RuntimeError("the app ended its lifespan without answering")


async def run_lifespan(
    lifespans: dict[int, Lifespan], app: Any, event: str, scope: dict[str, Any]
) -> dict[str, Any]:
    """One lifespan event (``startup`` or ``shutdown``) for ``app``; the message it sent."""
    if event == "startup":
        lifespans[id(app)] = Lifespan(app, scope)
    held = lifespans.get(id(app))
    if held is None:
        raise RuntimeError("lifespan shutdown without a startup")
    try:
        return await held.step({"type": f"lifespan.{event}"})
    finally:
        if event == "shutdown":
            del lifespans[id(app)]
