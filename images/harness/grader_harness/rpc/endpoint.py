"""Requests and responses over a ``Channel``, nested in both directions.

A request is ``{"id": n, "op": "...", ...}``; its response is ``{"re": n, "ok": value}`` or
``{"re": n, "error": {...}}``; ``{"id": n, "op": "bye"}`` ends the session and has no response.
While a side waits for a response it serves the peer's requests (callbacks, nested calls), so
either side can call the other at any depth.

``JudgeEndpoint`` is the trusted end: one reader (the caller's thread), an absolute deadline per
outermost request, and the first protocol violation (a response nobody asked for, a malformed
frame, a timeout) breaks the session for good. ``LearnerEndpoint`` runs in the learner's
process, where other threads (an event loop, a thread pool) may call the judge too.
"""

from __future__ import annotations

import queue
import sys
import threading
import time

from .channel import (
    Channel,
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
    InvalidFrame,
)
from .codec import CodecError, expect, expect_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Handler = Callable[[dict[str, Any]], Any]


MAX_OUTPUT_CHARS = 64 * 1024
"""What one response may carry of the learner's printed output (the rest is cut there)."""


def _show(text: str) -> None:
    """Write the learner's output on the judge's stdout, where pytest captures it per test."""
    try:
        sys.stdout.write(text)
    except (OSError, ValueError):
        pass


class RpcError(BaseException):
    """The remote session failed (the base of the judge side's own failures).

    Not an ``Exception``: a learner that breaks the protocol on purpose must not satisfy a hidden
    test's ``pytest.raises(Exception)`` or ``except Exception``; pytest reports it as a failure.
    """


class ProtocolError(RpcError):
    """The peer broke the protocol; the session is over."""


class RemoteTimeout(RpcError):
    """The peer did not answer in time; the session is over."""


class SessionClosed(RpcError):
    """The peer closed the channel; the session is over."""


class Failure(Exception):
    """A request ended with the peer's error description (``.error``)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__("remote error")
        self.error = error


class Bye(Exception):
    """The judge ended the session."""


def response(
    rid: int, handler: Handler, frame: dict[str, Any], describe: Callable[..., Any]
) -> Any:
    """The response frame to ``frame``: the handler's result, or its exception described."""
    try:
        return {"re": rid, "ok": handler(frame)}
    except (Bye, RpcError):
        raise
    except BaseException as exc:  # whatever the handled code raised goes back to the peer
        return {"re": rid, "error": describe(exc)}


class JudgeEndpoint:
    """The judge's end: strict, single reader, deadline-bound."""

    def __init__(
        self, channel: Channel, handler: Handler, describe: Callable[..., Any], timeout: float
    ) -> None:
        self.channel = channel
        self.handler = handler
        self.describe = describe
        self.timeout = timeout
        self.broken: RpcError | None = None
        self._lock = threading.RLock()
        self._next = 1
        self._waiting: list[int] = []
        self._arrived: dict[int, dict[str, Any]] = {}
        self._deadline = 0.0

    def request(self, frame: dict[str, Any]) -> Any:
        """Send ``frame`` as a request and return its ``ok`` value (``Failure`` for an error)."""
        with self._lock:
            self._check()
            rid = self._next
            self._next += 1
            if not self._waiting:
                self._deadline = time.monotonic() + self.timeout
            self._waiting.append(rid)
            try:
                self._send({**frame, "id": rid})
                while rid not in self._arrived:
                    self._route(self._receive())
                reply = self._arrived.pop(rid)
            finally:
                self._waiting.remove(rid)
        if "out" in reply:  # what the learner printed, shown as this test's output
            _show(reply["out"])
        if "error" in reply:
            raise Failure(reply["error"])
        return reply["ok"]

    def notify(self, frame: dict[str, Any]) -> None:
        """Send a frame that has no response (``bye``)."""
        with self._lock:
            if self.broken is None:
                self._deadline = time.monotonic() + self.timeout
                self._send({**frame, "id": self._next})
                self._next += 1

    def _check(self) -> None:
        if self.broken is not None:
            raise type(self.broken)(f"the session is over: {self.broken}")

    def _break(self, error: RpcError) -> RpcError:
        if self.broken is None:
            self.broken = error
        return error

    def _send(self, frame: dict[str, Any]) -> None:
        """Send within the deadline; a frame that cannot be encoded raises and sends nothing."""
        try:
            self.channel.send(frame, deadline=self._deadline)
        except ChannelTimeout:
            raise self._break(RemoteTimeout("the learner side stopped reading")) from None
        except ChannelClosed as exc:
            raise self._break(SessionClosed(str(exc))) from None

    def _receive(self) -> dict[str, Any]:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._timeout()
        try:
            return self.channel.receive(left)
        except ChannelTimeout:
            raise self._timeout() from None
        except ChannelClosed as exc:
            raise self._break(SessionClosed(f"{type(exc).__name__}: {exc}")) from None
        except ChannelError as exc:
            raise self._break(ProtocolError(f"{type(exc).__name__}: {exc}")) from None

    def _timeout(self) -> RpcError:
        message = f"the learner side did not answer within {self.timeout:g} s"
        return self._break(RemoteTimeout(message))

    def _route(self, frame: dict[str, Any]) -> None:
        try:
            rid = self._accept(frame)
        except CodecError as exc:
            raise self._break(ProtocolError(f"bad frame from the learner side: {exc}")) from None
        if rid is None:
            return
        answer = response(rid, self.handler, frame, self.describe)
        try:
            self._send(answer)
        except (FrameTooLarge, InvalidFrame) as exc:  # the judge's answer itself cannot travel
            self._send({"re": rid, "error": self.describe(exc)})

    def _accept(self, frame: dict[str, Any]) -> int | None:
        """File a response (``None``) or check a request (its id); ``CodecError`` if neither."""
        if "re" in frame:
            rid = expect_id(frame, "re")
            if rid not in self._waiting or rid in self._arrived:
                raise CodecError(f"a response to request {rid}, which is not awaited")
            _check_reply(frame)
            self._arrived[rid] = frame
            return None
        rid = expect_id(frame, "id")
        expect(frame, "op", str)
        return rid


def _check_reply(frame: dict[str, Any]) -> None:
    keys = set(frame) - {"out"}
    if "out" in frame and (type(frame["out"]) is not str or len(frame["out"]) > MAX_OUTPUT_CHARS):
        raise CodecError(f"a response's 'out' is text of at most {MAX_OUTPUT_CHARS} characters")
    if keys == {"re", "ok"}:
        return
    if keys == {"re", "error"} and type(frame["error"]) is dict:
        return
    raise CodecError("a response holds exactly 're' and 'ok', or 're' and an 'error' object")


class LearnerEndpoint:
    """The learner's end: a reader thread, and any thread may call the judge."""

    def __init__(
        self,
        channel: Channel,
        handler: Handler,
        describe: Callable[..., Any],
        output: Callable[[], str] | None = None,
    ) -> None:
        self.channel = channel
        self.handler = handler
        self.describe = describe
        self.output = output  # what the learner's code printed since the last response
        self.main = threading.current_thread()
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._next = 1
        self._arrived: dict[int, dict[str, Any]] = {}
        self._events: dict[int, threading.Event] = {}
        self._closed = False
        threading.Thread(target=self._read, name="rpc-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                frame = self.channel.receive(None)
            except ChannelError as exc:
                self._inbox.put(("end", exc))
                return
            self._inbox.put(("frame", frame))

    def wake(self) -> None:
        """Make the serving thread look at its condition again (a future finished)."""
        self._inbox.put(("wake", None))

    def request(self, frame: dict[str, Any]) -> Any:
        """Call the judge from any thread; the serving thread keeps serving while it waits."""
        with self._lock:
            if self._closed:
                raise ConnectionError("the judge has ended the session")
            rid = self._next
            self._next += 1
            event = threading.Event()
            self._events[rid] = event
        self.channel.send({**frame, "id": rid})
        if threading.current_thread() is self.main:
            self.pump(event.is_set)
        else:
            event.wait()
        with self._lock:
            del self._events[rid]
            reply = self._arrived.pop(rid, None)
        if reply is None:
            raise ConnectionError("the judge has ended the session")
        if "error" in reply:
            raise Failure(reply["error"])
        return reply.get("ok")

    def pump(self, done: Callable[[], bool]) -> None:
        """Serve frames on this (the serving) thread until ``done()``; ``Bye`` at the end."""
        while not done():
            kind, item = self._inbox.get()
            if kind == "wake":
                continue
            if kind == "end":
                self._end()
                raise Bye
            if "re" in item:
                with self._lock:
                    event = self._events.get(item["re"])
                    if event is not None:
                        self._arrived[item["re"]] = item
                        event.set()
                continue
            if item.get("op") == "bye":
                self._end()
                raise Bye
            rid = item.get("id", 0)
            answer = response(rid, self.handler, item, self.describe)
            output = self.output() if self.output is not None else ""
            if output:
                answer["out"] = output
            try:
                self.channel.send(answer)
            except (FrameTooLarge, InvalidFrame) as exc:  # a result too big to travel
                self.channel.send({"re": rid, "error": self.describe(exc)})

    def _end(self) -> None:
        with self._lock:
            self._closed = True
            for event in self._events.values():
                event.set()
