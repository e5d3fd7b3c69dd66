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


KEY = "0123456789abcdef" * 2


def keyed(body: bytes) -> bytes:
    return b'\n{"key":"' + KEY.encode() + b'",' + body[1:] + b"\n"


def test_only_keyed_lines_are_the_supervisors() -> None:
    """Lines without the key (or with another) are skipped and counted; the keyed one is read."""
    stream, peer = make(cap=4096)
    stream.key = KEY
    forged = b'{"key":"' + b"f" * 32 + b'","event":"report"}\n'
    peer.sendall(frame(1, b'{"event":"report"}\n' + forged + b"partial" + keyed(b'{"n":1}')))
    assert stream.read_keyed(time.monotonic() + 1) == b'{"key":"' + KEY.encode() + b'","n":1}'
    assert stream.foreign_lines == 3  # the plain line, the other key, the partial line
    assert stream.tampered is True
    stream.close()
    peer.close()


def test_a_clean_channel_is_not_tampered() -> None:
    """The supervisor's own lines (each after a newline) leave nothing foreign."""
    stream, peer = make(cap=4096)
    stream.key = KEY
    peer.sendall(frame(1, keyed(b'{"n":1}') + keyed(b'{"n":2}')[:20]))
    assert stream.read_keyed(time.monotonic() + 1) is not None
    assert stream.read_keyed(time.monotonic() + 0.2) is None  # the second is still partial
    assert (stream.foreign_lines, stream.tampered) == (0, False)
    stream.close()
    peer.close()


def test_an_unkeyed_flood_over_the_cap_is_tampering() -> None:
    """Bytes without a newline past the cap: no line, and the channel counts as tampered."""
    stream, peer = make(cap=64)
    stream.key = KEY
    peer.sendall(frame(1, b"x" * 200))
    assert stream.read_keyed(time.monotonic() + 1) is None
    assert (stream.overflow, stream.tampered) == (True, True)
    stream.close()
    peer.close()


def test_without_a_key_nothing_is_believed() -> None:
    """A stream whose ready line gave no key accepts no line as the supervisor's."""
    stream, peer = make(cap=4096)
    peer.sendall(frame(1, keyed(b'{"n":1}')))
    assert stream.read_keyed(time.monotonic() + 0.2) is None
    assert stream.foreign_lines == 1
    stream.close()
    peer.close()
