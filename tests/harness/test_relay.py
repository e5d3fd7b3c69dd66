"""The supervisor's frame relay, on real pipes (in-process, no Docker, no fork)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images" / "harness"))

from grader_harness import protocol
from grader_harness.relay import Relay

from grader.sandbox import frames


class Wires:
    """The child's two pipes and a stand-in for the container's stdin; what was emitted."""

    def __init__(self, leftover: bytes = b"") -> None:
        self.from_child_r, self.from_child_w = os.pipe()
        self.to_child_r, self.to_child_w = os.pipe()
        self.stdin_r, self.stdin_w = os.pipe()
        self.emitted: list[bytes] = []
        self.relay = Relay(
            child_out=self.from_child_r,
            child_in=self.to_child_w,
            emit=self.emitted.append,
            stdin=self.stdin_r,
            leftover=leftover,
        )

    def child_reads(self) -> bytes:
        os.set_blocking(self.to_child_r, False)
        try:
            return os.read(self.to_child_r, 1 << 20)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        self.relay.close()
        for fd in (self.from_child_w, self.to_child_r, self.stdin_r, self.stdin_w):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def wires() -> Iterator[Wires]:
    made = Wires()
    yield made
    made.close()


def test_child_frames_go_out_prefixed_line_by_line(wires: Wires) -> None:
    os.write(wires.from_child_w, b'{"a":1}\n{"b"')
    wires.relay.on_child_output()
    os.write(wires.from_child_w, b":2}\n")
    wires.relay.on_child_output()
    assert wires.emitted == [b'rpc {"a":1}\n', b'rpc {"b":2}\n']
    assert wires.relay.fields() == {"frames_in": 0, "frames_out": 2, "problem": None}


def test_worker_frames_reach_the_child_without_prefix_and_other_lines_are_dropped(
    wires: Wires,
) -> None:
    os.write(wires.stdin_w, b'rpc {"x":1}\nnoise\nrpc {"y"')
    wires.relay.on_stdin()
    wires.relay.on_child_writable()
    os.write(wires.stdin_w, b":2}\n")
    wires.relay.on_stdin()
    wires.relay.on_child_writable()
    assert wires.child_reads() == b'{"x":1}\n{"y":2}\n'


def test_end_closes_the_childs_input_after_the_backlog() -> None:
    made = Wires(leftover=b'rpc {"x":1}\nend\nrpc {"late":1}\n')
    try:
        made.relay.on_child_writable()
        assert made.child_reads() == b'{"x":1}\n'
        assert made.relay.child_in is None and not made.relay.stdin_open
        assert os.read(made.to_child_r, 10) == b""  # EOF for the child
    finally:
        made.close()


def test_end_of_stdin_also_ends_the_channel(wires: Wires) -> None:
    os.close(wires.stdin_w)
    wires.relay.on_stdin()
    assert wires.relay.child_in is None
    assert wires.relay.readable_fds() == [wires.from_child_r]


def test_an_oversized_child_frame_cuts_the_channel(
    wires: Wires, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("grader_harness.relay.MAX_RPC_FRAME_BYTES", 10)
    os.write(wires.from_child_w, b"x" * 11 + b"\n")
    wires.relay.on_child_output()
    assert wires.emitted == []
    assert wires.relay.problem == "the child wrote a frame over 10 bytes"
    assert wires.relay.child_out is None and wires.relay.child_in is None


def test_a_child_that_stops_reading_loses_its_channel(
    wires: Wires, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("grader_harness.relay.MAX_RPC_BACKLOG_BYTES", 1000)
    for _ in range(40):
        os.write(wires.stdin_w, b"rpc " + b"y" * 100 + b"\n")
        wires.relay.on_stdin()
    assert wires.relay.problem == "the child stopped reading its frames"
    assert wires.relay.child_in is None


def test_the_prefix_and_end_line_are_the_workers() -> None:
    assert protocol.RPC_PREFIX == frames.RPC_PREFIX
    assert protocol.END_LINE == frames.END_LINE
    assert protocol.MAX_RPC_FRAME_BYTES == frames.MAX_FRAME_BYTES


def test_a_reused_judge_reads_to_the_workers_end_dropping_late_frames(wires: Wires) -> None:
    """After its run a reused judge's supervisor drops late frames up to ``end``: True."""
    wires.relay.close()  # the child is gone
    os.write(wires.stdin_w, b'rpc {"late":1}\nrpc {"later":2}\nend\n')
    assert wires.relay.await_end(5.0) is True
    assert wires.relay.ended and not wires.relay.stdin_open


def test_an_end_already_relayed_during_the_run_is_enough(wires: Wires) -> None:
    """An ``end`` the relay took during the run (the learner reported first) counts."""
    os.write(wires.stdin_w, b"end\n")
    wires.relay.on_stdin()
    wires.relay.close()
    assert wires.relay.await_end(0.1) is True


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        (b"", "no end within the timeout"),
        (b'end\n{"version": 1}\n', "bytes after end: never mistaken for a submission"),
        (None, "end of stdin is not the worker's end"),
    ],
)
def test_a_judge_channel_not_ended_plainly_is_not_reused(
    wires: Wires, sent: bytes | None, why: str
) -> None:
    """Without exactly the worker's ``end`` the judge's container must go."""
    wires.relay.close()
    if sent is None:
        os.close(wires.stdin_w)
    else:
        os.write(wires.stdin_w, sent)
    assert wires.relay.await_end(0.2) is False, why
