"""Capture of the child's stdout, stderr, report and compile pipes, each under a byte cap, until
the child exits, the wall deadline passes or an output cap is exceeded; then their fields.
"""

from __future__ import annotations

import base64
import json
import os
import select
import time

from .protocol import MAX_REPORT_DEPTH, READ_CHUNK

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .relay import Relay


class Stream:
    """One captured pipe with a byte cap."""

    __slots__ = ("cap", "data", "fd", "open", "total")

    def __init__(self, fd: int, cap: int) -> None:
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.open = True

    def feed(self, chunk: bytes) -> bool:
        """Keep what fits under the cap; return True once the cap is exceeded."""
        self.total += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        return self.total > self.cap


class Capture:
    """The child's four pipes, polled together with its pidfd where the kernel has one."""

    __slots__ = (
        "compiled",
        "err",
        "out",
        "pidfd",
        "poller",
        "relay",
        "relay_fds",
        "report",
        "rusage",
        "streams",
    )

    def __init__(
        self,
        pid: int,
        out: Stream,
        err: Stream,
        report: Stream,
        compiled: Stream,
        relay: Relay | None = None,
    ) -> None:
        self.relay = relay
        self.rusage: Any = None  # the child's own, once it is reaped
        self.relay_fds: dict[int, int] = {}
        self.out = out
        self.err = err
        self.report = report
        self.compiled = compiled
        self.pidfd: int | None
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None
        self.poller = select.poll()
        self.streams = {s.fd: s for s in (out, err, report, compiled)}
        for fd in self.streams:
            self.poller.register(fd, select.POLLIN | select.POLLHUP)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)

    def watch(self, pid: int, deadline: float) -> tuple[int | None, bool, bool]:
        """Read the pipes until the child exits, ``deadline`` passes or an output cap is exceeded.

        Return the child's wait status (None while it still runs), whether the deadline passed,
        and whether stdout or stderr went over its cap.
        """
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, True, False
            if self._read_ready(remaining):
                return None, False, True
            done, status, rusage = os.wait4(pid, os.WNOHANG)
            if done:
                self.rusage = rusage
                return status, False, False

    def _read_ready(self, remaining: float) -> bool:
        """Read one chunk from each ready pipe; return whether stdout or stderr exceeded its cap."""
        # The pidfd wakes the poll when the child exits; without one, look every 50 ms.
        timeout_ms = int(min(remaining, 0.05 if self.pidfd is None else remaining) * 1000) + 1
        output_limit = False
        self._register_relay()
        for fd, _ in self.poller.poll(timeout_ms):
            if fd == self.pidfd:
                continue
            if fd in self.relay_fds:
                self._relay_event(fd)
                continue
            exceeded = _drain_once(self.streams[fd], self.poller)
            if exceeded and fd in (self.out.fd, self.err.fd):
                output_limit = True
        return output_limit

    def _register_relay(self) -> None:
        """Poll the relay's descriptors: its inputs, and the child's pipe while frames wait."""
        relay = self.relay
        if relay is None:
            return
        wanted = {fd: select.POLLIN | select.POLLHUP for fd in relay.readable_fds()}
        if relay.wants_write() and relay.child_in is not None:
            wanted[relay.child_in] = select.POLLOUT
        for fd in [fd for fd in self.relay_fds if fd not in wanted]:
            self.poller.unregister(fd)
            del self.relay_fds[fd]
        for fd, mask in wanted.items():
            if self.relay_fds.get(fd) != mask:
                self.poller.register(fd, mask)
                self.relay_fds[fd] = mask

    def _relay_event(self, fd: int) -> None:
        relay = self.relay
        if relay is None:
            return
        if fd == relay.child_out:
            relay.on_child_output()
        elif fd == relay.child_in:
            relay.on_child_writable()
        elif fd == relay.stdin:
            relay.on_stdin()
            relay.on_child_writable()
        self._register_relay()

    def close(self) -> None:
        """Read what the pipes still hold without blocking, then close them and the pidfd."""
        for stream in self.streams.values():
            while stream.open and _drain_once(stream, None, block=False) is not None:
                pass
            if stream.open:
                os.close(stream.fd)
        if self.pidfd is not None:
            os.close(self.pidfd)
        if self.relay is not None:
            while self.relay.child_out is not None:  # frames the child wrote before it ended
                os.set_blocking(self.relay.child_out, False)
                try:
                    self.relay.on_child_output()
                except BlockingIOError:
                    break
            self.relay.close()

    def compile_failure(self) -> dict[str, Any] | None:
        """The compile error the child reported before running anything, if it reported one.

        Only the first line counts: it was written before any snippet code could run.
        """
        line = bytes(self.compiled.data).split(b"\n", 1)[0]
        try:
            value = json.loads(line) if line else None
        except (ValueError, RecursionError):
            return None
        failure = value.get("syntax_error") if isinstance(value, dict) else None
        return failure if isinstance(failure, dict) else None

    def fields(self) -> dict[str, Any]:
        """The report's ``stdout``, ``stderr`` and ``child_report`` fields, in that order."""
        return {
            "stdout": _encode(self.out),
            "stderr": _encode(self.err),
            "child_report": _child_report(self.report),
        }


def _drain_once(stream: Stream, poller: select.poll | None, block: bool = True) -> bool | None:
    """Read one chunk; return whether the cap was exceeded, or None at EOF."""
    if not stream.open:
        return None
    if not block:
        os.set_blocking(stream.fd, False)
    try:
        chunk = os.read(stream.fd, READ_CHUNK)
    except BlockingIOError:
        return None
    if not chunk:
        stream.open = False
        if poller is not None:
            poller.unregister(stream.fd)
        os.close(stream.fd)
        return None
    return stream.feed(chunk)


def _encode(stream: Stream) -> dict[str, Any]:
    return {
        "b64": base64.b64encode(bytes(stream.data)).decode("ascii"),
        "bytes": stream.total,
        "truncated": stream.total > stream.cap,
    }


def _child_report(stream: Stream) -> dict[str, Any]:
    if stream.total == 0:
        return {"status": "missing"}
    if stream.total > stream.cap:
        return {"status": "invalid", "reason": "child report over the size cap"}
    try:
        value = json.loads(bytes(stream.data))
    except (ValueError, RecursionError):
        return {"status": "invalid", "reason": "child report is not JSON"}
    if not isinstance(value, dict):
        return {"status": "invalid", "reason": "child report is not an object"}
    if _depth(value) > MAX_REPORT_DEPTH:
        return {
            "status": "invalid",
            "reason": f"child report nested deeper than {MAX_REPORT_DEPTH}",
        }
    return {"status": "ok", "report": value}


def _depth(value: object) -> int:
    """Nesting depth of parsed JSON, measured without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest
