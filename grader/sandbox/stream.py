"""The attach stream of one sandbox container: demultiplexed, byte-capped, deadline-bound.

With ``tty=False`` Docker frames the stream as ``[stream id, 0, 0, 0, length (4 bytes)]`` then
the payload. The supervisor (PID 1) writes the container's stdout; stderr carries its own
diagnostics. Both are capped so a flood costs us nothing. Under gVisor a snippet can write into
stdout too (``/proc/1/fd/1``), so after its ``ready`` line only the supervisor's keyed lines
count (``read_keyed``; the key is in ``ready``, docs/harness.md); the rest is counted, never
parsed.
"""

from __future__ import annotations

import hmac
import select
import socket
import struct
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

_STDOUT = 1
_HEADER = struct.Struct(">BxxxL")
STDERR_CAP = 64 * 1024


@dataclass
class AttachStream:
    """A started container's attach socket and what has been read from it so far."""

    container_id: str
    sock: socket.socket
    raw: Any  # docker-py's socket wrapper; holds the HTTP response alive
    stdout_cap: int
    started: float = field(default_factory=time.monotonic)
    buffer: bytearray = field(default_factory=bytearray)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    overflow: bool = False
    eof: bool = False
    key: str | None = None
    """The supervisor's report key, from its ``ready`` line."""
    foreign_lines: int = 0
    """Lines on stdout that did not carry the key: a snippet wrote them (gVisor)."""

    def send(self, payload: bytes) -> None:
        """Write to the container's stdin (the supervisor reads one line)."""
        self.sock.sendall(payload)

    def next_line(self) -> bytes | None:
        """A complete stdout line already read, without waiting; None when there is none."""
        newline = self.stdout.find(b"\n")
        if newline < 0:
            return None
        line = bytes(self.stdout[:newline])
        del self.stdout[: newline + 1]
        return line

    def pump(self) -> None:
        """Read what the socket holds now (call when it is readable); marks EOF."""
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return
        except (OSError, ValueError):
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.buffer += chunk
        self._demux()

    def read_line(self, deadline: float) -> bytes | None:
        """Next complete stdout line, or None at EOF, at the deadline or past the cap."""
        while True:
            newline = self.stdout.find(b"\n")
            if newline >= 0:
                line = bytes(self.stdout[:newline])
                del self.stdout[: newline + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.overflow or self.eof:
                return None
            try:
                readable, _, _ = select.select([self.sock], [], [], remaining)
                if not readable:
                    return None
                chunk = self.sock.recv(65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buffer += chunk
            self._demux()

    def read_keyed(self, deadline: float) -> bytes | None:
        """The supervisor's next line (it carries the key), or None as ``read_line``.

        Lines without the key are skipped and counted in ``foreign_lines``; empty lines are
        the newline the supervisor writes before each keyed line.
        """
        while (line := self.read_line(deadline)) is not None:
            if self.is_keyed(line):
                return line
            if line:
                self.foreign_lines += 1
        return None

    def is_keyed(self, line: bytes) -> bool:
        """Whether ``line`` starts as only the supervisor's lines do: ``{"key":"<key>",``."""
        if self.key is None:
            return False
        prefix = b'{"key":"' + self.key.encode("ascii") + b'",'
        return hmac.compare_digest(line[: len(prefix)], prefix)

    @property
    def tampered(self) -> bool:
        """Whether anything but the supervisor's keyed lines reached stdout after ``ready``.

        A partial line left over counts unless it is the start of a keyed line (a report over
        the cap is ours, not the snippet's).
        """
        if self.foreign_lines:
            return True
        pending = bytes(self.stdout).lstrip(b"\n")
        if not pending or self.key is None:
            return False
        prefix = b'{"key":"' + self.key.encode("ascii") + b'",'
        size = min(len(pending), len(prefix))
        return not hmac.compare_digest(pending[:size], prefix[:size])

    def _demux(self) -> None:
        buf = self.buffer
        while len(buf) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            data = bytes(buf[_HEADER.size : _HEADER.size + size])
            del buf[: _HEADER.size + size]
            if stream == _STDOUT:
                room = self.stdout_cap - len(self.stdout)
                if len(data) > room:
                    self.overflow = True
                self.stdout += data[: max(room, 0)]
            else:
                self.stderr += data[: max(STDERR_CAP - len(self.stderr), 0)]

    def stderr_tail(self) -> str:
        text = bytes(self.stderr[-2000:]).decode("utf-8", "replace").strip()
        return f": {text}" if text else ""

    def close(self) -> None:
        """Shut the connection down for good: socket, its file wrapper and the response.

        ``shutdown`` first: a connection left half-read stalls the container's exit, and
        ``close`` alone does not release it while docker-py's wrappers hold references.
        """
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        for closeable in (self.raw, getattr(self.raw, "_response", None), self.sock):
            if closeable is not None:
                with suppress(Exception):
                    closeable.close()
