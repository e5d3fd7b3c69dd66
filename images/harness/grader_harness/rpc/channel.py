"""Newline-framed JSON objects over a pair of file descriptors.

A frame is one UTF-8 line holding one JSON object, at most ``MAX_FRAME_BYTES`` with its newline.
Decoding is strict: no NaN or infinities, no duplicate keys, bounded nesting and element count,
exact types only. Every way a frame can be wrong is its own ``ChannelError`` subclass, so the
judge side can say precisely what a hostile peer sent, and never hangs on or grows with it.
"""

from __future__ import annotations

import json
import math
import os
import select
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FRAME_BYTES = 1024 * 1024
MAX_FRAME_DEPTH = 64
MAX_FRAME_ELEMENTS = 200_000
READ_CHUNK = 65536


class ChannelError(Exception):
    """The channel cannot deliver a frame (the base of every channel failure)."""


class ChannelClosed(ChannelError):
    """The peer closed its end: end of file."""


class ChannelTimeout(ChannelError):
    """No complete frame arrived within the timeout."""


class FrameTooLarge(ChannelError):
    """A frame is over ``MAX_FRAME_BYTES``."""


class InvalidFrame(ChannelError):
    """A frame is not one well-formed, bounded JSON object."""


def _reject_constant(name: str) -> Any:
    raise InvalidFrame(f"{name} is not JSON data")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidFrame(f"number {text[:40]!r} is not finite")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise InvalidFrame("duplicate key in a JSON object")
    return out


def check_shape(value: object, max_depth: int, max_elements: int) -> None:
    """Refuse nesting deeper than ``max_depth`` or more than ``max_elements`` values."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > max_elements:
            raise InvalidFrame(f"more than {max_elements} values in one frame")
        kind = type(item)
        if kind is dict or kind is list:
            if depth > max_depth:
                raise InvalidFrame(f"nested deeper than {max_depth} levels")
            children = item.values() if kind is dict else item
            stack.extend((child, depth + 1) for child in children)


def decode_frame(line: bytes) -> dict[str, Any]:
    """One frame's bytes (without the newline) as a dict, or a precise ``InvalidFrame``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidFrame(f"frame is not UTF-8: {exc.reason}") from None
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except InvalidFrame:
        raise
    except RecursionError:
        raise InvalidFrame(f"nested deeper than {MAX_FRAME_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and ints beyond the digit limit
        raise InvalidFrame(f"frame is not JSON: {str(exc)[:200]}") from None
    if type(value) is not dict:
        raise InvalidFrame(f"frame is a JSON {type(value).__name__}, not an object")
    check_shape(value, MAX_FRAME_DEPTH, MAX_FRAME_ELEMENTS)
    return value


def encode_frame(obj: dict[str, Any]) -> bytes:
    """One frame's bytes, newline included; ``FrameTooLarge`` or ``InvalidFrame`` if it cannot."""
    if type(obj) is not dict:
        raise InvalidFrame(f"a frame must be a dict, not {type(obj).__name__}")
    try:
        text = json.dumps(obj, allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidFrame(f"frame cannot be encoded: {str(exc)[:200]}") from None
    data = text.encode("ascii") + b"\n"
    if len(data) > MAX_FRAME_BYTES:
        raise FrameTooLarge(f"frame of {len(data)} bytes is over {MAX_FRAME_BYTES}")
    return data


class Channel:
    """Read frames from ``read_fd``, write frames to ``write_fd``; writes are thread-safe."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = bytearray()
        self._eof = False
        self._broken: ChannelError | None = None
        self._write_lock = threading.Lock()

    def send(self, obj: dict[str, Any], deadline: float | None = None) -> None:
        """Write one frame (all of it, or raise).

        With a ``deadline`` (``time.monotonic()`` seconds), a peer that stops reading makes this
        raise ``ChannelTimeout`` instead of blocking forever: it writes at most ``PIPE_BUF``
        bytes at a time, each after ``select`` said the pipe has room.
        """
        data = memoryview(encode_frame(obj))
        step = len(data) if deadline is None else select.PIPE_BUF
        with self._write_lock:
            while data:
                if deadline is not None:
                    left = deadline - time.monotonic()
                    ready = left > 0 and select.select([], [self.write_fd], [], left)[1]
                    if not ready:
                        raise ChannelTimeout("the peer stopped reading")
                try:
                    written = os.write(self.write_fd, data[:step])
                except BrokenPipeError:
                    raise ChannelClosed("the peer closed the channel") from None
                data = data[written:]

    def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame; ``timeout`` seconds at most (``None``: wait as long as it takes).

        After an oversize frame the stream has lost its framing: every later call raises too.
        """
        if self._broken is not None:
            raise self._broken
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return decode_frame(line)
            if len(self._buffer) >= MAX_FRAME_BYTES:
                self._broken = FrameTooLarge(f"a frame is over {MAX_FRAME_BYTES} bytes")
                self._buffer.clear()
                raise self._broken
            if self._eof:
                raise ChannelClosed(
                    "the peer closed the channel"
                    + (" in the middle of a frame" if self._buffer else "")
                )
            self._fill(deadline)

    def _fill(self, deadline: float | None) -> None:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout("no frame arrived in time")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                raise ChannelTimeout("no frame arrived in time")
        want = min(READ_CHUNK, MAX_FRAME_BYTES - len(self._buffer))
        chunk = os.read(self.read_fd, max(want, 1))
        if not chunk:
            self._eof = True
        self._buffer += chunk
