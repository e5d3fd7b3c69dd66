"""Demultiplexing the attach stream, with caps, over a real socket pair."""

from __future__ import annotations

import socket
import struct
import time

from grader.sandbox.stream import STDERR_CAP, AttachStream


def frame(stream_id: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream_id, len(data)) + data


def make(cap: int = 1024) -> tuple[AttachStream, socket.socket]:
    ours, theirs = socket.socketpair()
    return AttachStream("c", ours, None, cap), theirs


def test_lines_are_split_across_frames() -> None:
    """A line arriving in several frames (and with stderr between) is returned whole."""
    stream, peer = make()
    peer.sendall(frame(1, b'{"a"') + frame(2, b"diag") + frame(1, b": 1}\nnext"))
    assert stream.read_line(time.monotonic() + 1) == b'{"a": 1}'
    assert stream.stderr == bytearray(b"diag")
    peer.sendall(frame(1, b"\n"))
    assert stream.read_line(time.monotonic() + 1) == b"next"
    stream.close()
    peer.close()


def test_stdout_over_the_cap_stops_reading() -> None:
    """Past the byte cap the stream is marked overflowing and no line is returned."""
    stream, peer = make(cap=16)
    peer.sendall(frame(1, b"x" * 64))
    assert stream.read_line(time.monotonic() + 1) is None
    assert stream.overflow is True
    assert len(stream.stdout) == 16
    stream.close()
    peer.close()


def test_stderr_is_capped() -> None:
    """The supervisor's stderr is kept up to its cap only."""
    stream, peer = make()
    peer.sendall(frame(2, b"e" * (STDERR_CAP + 100)) + frame(1, b"ok\n"))
    assert stream.read_line(time.monotonic() + 2) == b"ok"
    assert len(stream.stderr) == STDERR_CAP
    stream.close()
    peer.close()


def test_deadline_and_eof() -> None:
    """Nothing before the deadline gives None; a closed peer is EOF."""
    stream, peer = make()
    assert stream.read_line(time.monotonic() + 0.05) is None
    assert stream.eof is False
    peer.close()
    assert stream.read_line(time.monotonic() + 1) is None
    assert stream.eof is True
    stream.close()
