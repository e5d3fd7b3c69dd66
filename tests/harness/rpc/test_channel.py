"""The channel and codec on their own: limits and hostile frames give precise errors."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "images" / "harness"))

from grader_harness.rpc.channel import (
    MAX_FRAME_BYTES,
    MAX_FRAME_DEPTH,
    MAX_FRAME_ELEMENTS,
    Channel,
    ChannelClosed,
    ChannelTimeout,
    FrameTooLarge,
    InvalidFrame,
)
from grader_harness.rpc.codec import CodecError, Decoder, Encoder, NotData


@pytest.fixture
def pipe() -> Iterator[tuple[Channel, int]]:
    """A channel reading a pipe, and the raw descriptor writing into it."""
    read_fd, write_fd = os.pipe()
    other_r, other_w = os.pipe()
    yield Channel(read_fd, other_w), write_fd
    for fd in (read_fd, other_r, other_w):
        os.close(fd)
    with contextlib.suppress(OSError):  # some tests close it themselves
        os.close(write_fd)


def test_frames_round_trip_in_order(pipe: tuple[Channel, int]) -> None:
    """Two frames written in one chunk are read back one at a time, equal and exact."""
    channel, fd = pipe
    os.write(fd, b'{"a": [1, 2.5, "x", null, true]}\n{"b": {}}\n')
    assert channel.receive(1) == {"a": [1, 2.5, "x", None, True]}
    assert channel.receive(1) == {"b": {}}


def test_send_writes_one_line() -> None:
    """``send`` writes compact ASCII JSON ending in a single newline."""
    read_fd, write_fd = os.pipe()
    Channel(read_fd, write_fd).send({"text": "é\nx"})
    assert os.read(read_fd, 1000) == b'{"text":"\\u00e9\\nx"}\n'
    os.close(read_fd)
    os.close(write_fd)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json\n", "frame is not JSON"),
        (b"[1, 2]\n", "frame is a JSON list, not an object"),
        (b'"text"\n', "frame is a JSON str, not an object"),
        (b'{"x": NaN}\n', "NaN is not JSON data"),
        (b'{"x": -Infinity}\n', "-Infinity is not JSON data"),
        (b'{"x": 1e999}\n', "number '1e999' is not finite"),
        (b'{"x": 1, "x": 2}\n', "duplicate key in a JSON object"),
        (b'{"x": "\xff"}\n', "frame is not UTF-8"),
        (b'{"x": ' + b"9" * 5000 + b"}\n", "frame is not JSON"),
        (b'{"x": ' + b"[" * 100 + b"]" * 100 + b"}\n", f"nested deeper than {MAX_FRAME_DEPTH}"),
        (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested deeper than"),
        (
            b'{"x": [' + b",".join([b"0"] * (MAX_FRAME_ELEMENTS + 1)) + b"]}\n",
            f"more than {MAX_FRAME_ELEMENTS} values in one frame",
        ),
    ],
    ids=[
        "invalid",
        "list",
        "string",
        "nan",
        "infinity",
        "overflow",
        "duplicate",
        "utf8",
        "huge-int",
        "deep",
        "very-deep",
        "many",
    ],
)
def test_hostile_frames_are_precise_errors(
    pipe: tuple[Channel, int], data: bytes, message: str
) -> None:
    """Each malformed frame raises InvalidFrame naming what is wrong, then the next one reads."""
    channel, fd = pipe
    writer = threading.Thread(target=os.write, args=(fd, data + b'{"ok": 1}\n'))
    writer.start()  # larger than a pipe's buffer: written while the channel reads
    with pytest.raises(InvalidFrame, match=message.replace("(", r"\(")):
        channel.receive(10)
    assert channel.receive(10) == {"ok": 1}
    writer.join()


def test_an_oversize_frame_breaks_the_channel_for_good(pipe: tuple[Channel, int]) -> None:
    """A line over the cap raises FrameTooLarge without buffering more than the cap."""
    channel, fd = pipe
    os.set_blocking(fd, False)
    stop = threading.Event()
    writer = threading.Thread(target=_flood, args=(fd, stop))
    writer.start()
    with pytest.raises(FrameTooLarge):
        channel.receive(10)
    stop.set()
    assert len(channel._buffer) == 0
    writer.join()
    with pytest.raises(FrameTooLarge):
        channel.receive(1)


def _flood(fd: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            os.write(fd, b"x" * 65536)
        except BlockingIOError:
            select.select([], [fd], [], 0.5)
            continue


def test_end_of_file_and_timeout_are_distinct(pipe: tuple[Channel, int]) -> None:
    """No data yet is a timeout; a closed writer is ChannelClosed, even mid-frame."""
    channel, fd = pipe
    with pytest.raises(ChannelTimeout):
        channel.receive(0.01)
    os.write(fd, b'{"half": ')
    os.close(fd)
    with pytest.raises(ChannelClosed, match="in the middle of a frame"):
        channel.receive(1)


def test_sending_an_oversize_frame_is_refused_before_writing() -> None:
    """A frame over the cap is FrameTooLarge and nothing reaches the pipe."""
    read_fd, write_fd = os.pipe()
    channel = Channel(read_fd, write_fd)
    with pytest.raises(FrameTooLarge):
        channel.send({"x": "y" * MAX_FRAME_BYTES})
    with pytest.raises(InvalidFrame, match="Out of range float"):
        channel.send({"x": float("nan")})
    os.set_blocking(read_fd, False)
    with pytest.raises(BlockingIOError):
        os.read(read_fd, 10)
    os.close(read_fd)
    os.close(write_fd)


def test_a_reader_that_never_reads_times_the_sender_out() -> None:
    """With a deadline, a full pipe is ChannelTimeout rather than a blocked writer."""
    read_fd, write_fd = os.pipe()
    channel = Channel(read_fd, write_fd)
    with pytest.raises(ChannelTimeout, match="stopped reading"):
        for _ in range(100):
            channel.send({"x": "y" * 60000}, deadline=time.monotonic() + 0.05)
    os.close(read_fd)
    os.close(write_fd)


class Lying:
    """An object whose ``__eq__`` always says yes."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class Text(str):
    pass


def test_the_encoder_sends_only_exact_types_by_value() -> None:
    """Subclasses of str and objects with lying ``__eq__`` go to the leaf hook, not by value."""
    leaves: list[object] = []

    def leaf(obj: object) -> dict[str, object]:
        leaves.append(obj)
        return {"$handle": len(leaves)}

    lying, text = Lying(), Text("x")
    encoded = Encoder(leaf).encode({"a": [lying, text, (1, b"\x00")], "$b": 1, 2: None})
    assert encoded == {
        "$dict": [
            ["a", [{"$handle": 1}, {"$handle": 2}, {"$tuple": [1, {"$bytes": "AA=="}]}]],
            ["$b", 1],
            [2, None],
        ]
    }
    assert leaves == [lying, text]
    assert Decoder({"$handle": lambda d: ("h", d["$handle"])}).decode(encoded) == {
        "a": [("h", 1), ("h", 2), (1, b"\x00")],
        "$b": 1,
        2: None,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (list(range(10**6)), "more than"),
        (float("inf"), "has no JSON form"),
        (10**5000, "int too large"),
    ],
    ids=["million", "infinity", "huge-int"],
)
def test_the_encoder_refuses_what_cannot_travel(value: object, message: str) -> None:
    """Too many values, non-finite floats and giant ints are NotData, not a frame."""
    with pytest.raises(NotData, match=message):
        Encoder(lambda obj: {}).encode(value)


def test_the_encoder_refuses_cycles_by_depth() -> None:
    """A list containing itself is refused by the depth cap, not a recursion crash."""
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(NotData, match="nested deeper"):
        Encoder(lambda obj: {}).encode(loop)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"$tuple": 1}, r"\$tuple must be the only key and hold a list"),
        ({"$bytes": "!!"}, r"\$bytes is not base64"),
        ({"$dict": [[[1], 2]]}, r"\$dict key of type list is unhashable"),
        ({"$dict": [1]}, r"\$dict items must be \[key, value\] pairs"),
        ({"$handle": 1}, r"unexpected tag '\$handle'"),
        ({"$evil": 1}, r"unexpected tag '\$evil'"),
        ({"x": 1, "$tuple": []}, r"\$tuple must be the only key"),
    ],
)
def test_the_decoder_refuses_malformed_tags(data: object, message: str) -> None:
    """Every malformed or unexpected tag is a CodecError naming it."""
    with pytest.raises(CodecError, match=message):
        Decoder({}).decode(data)
