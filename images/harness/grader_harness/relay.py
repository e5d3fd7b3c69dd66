"""The supervisor's relay of an isolated run's frames, between the child and the worker.

In the ``judge`` and ``serve`` modes the child talks to the other container's child through
the worker: it writes frames (one line each) on a pipe, the supervisor copies each complete
line to the container's stdout prefixed with ``rpc `` and copies ``rpc `` lines from stdin
to the child's other pipe. The supervisor never parses a frame: it only cuts lines, caps their
size and the backlog, and stops at ``end`` or at the end of stdin (then the child reads EOF).
A child that writes a frame over the cap, or stops reading while frames pile up, loses its
channel; the session goes on without it and the other side sees the end of the channel.
"""

from __future__ import annotations

import os
import select
import time

from .protocol import END_LINE, MAX_RPC_BACKLOG_BYTES, MAX_RPC_FRAME_BYTES, READ_CHUNK, RPC_PREFIX

END_WAIT_SECONDS = 5.0
"""How long a reused judge's supervisor waits, after its report, for the worker's ``end``."""

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Relay:
    """Copies frames child -> stdout and stdin -> child, line by line, with caps."""

    __slots__ = (
        "child_in",
        "child_out",
        "emit",
        "ended",
        "frames_in",
        "frames_out",
        "inbound",
        "outbound",
        "pending",
        "problem",
        "stdin",
        "stdin_open",
    )

    def __init__(
        self,
        child_out: int,
        child_in: int,
        emit: Callable[[bytes], None],
        stdin: int = 0,
        leftover: bytes = b"",
    ) -> None:
        self.child_out: int | None = child_out  # we read the child's frames here
        self.child_in: int | None = child_in  # and write the other side's frames here
        self.emit = emit
        self.stdin = stdin
        self.stdin_open = True
        self.ended = False  # the worker's ``end`` came (not merely the end of stdin)
        self.outbound = bytearray()  # child -> worker, an incomplete line
        self.inbound = bytearray(leftover)  # worker -> us, an incomplete line
        self.pending = bytearray()  # worker -> child, complete frames not yet written
        self.frames_in = 0
        self.frames_out = 0
        self.problem: str | None = None
        os.set_blocking(child_in, False)
        self._take_inbound()

    def readable_fds(self) -> list[int]:
        fds = [self.stdin] if self.stdin_open else []
        return fds + ([self.child_out] if self.child_out is not None else [])

    def wants_write(self) -> bool:
        return self.child_in is not None and bool(self.pending)

    def on_child_output(self) -> None:
        """Read what the child wrote; pass every complete line on."""
        if self.child_out is None:
            return
        try:
            chunk = os.read(self.child_out, READ_CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            os.close(self.child_out)
            self.child_out = None
            return
        self.outbound += chunk
        while True:
            newline = self.outbound.find(b"\n")
            if newline < 0:
                break
            line = bytes(self.outbound[:newline])
            del self.outbound[: newline + 1]
            if len(line) > MAX_RPC_FRAME_BYTES:
                self._fail(f"the child wrote a frame over {MAX_RPC_FRAME_BYTES} bytes")
                return
            self.frames_out += 1
            self.emit(RPC_PREFIX + line + b"\n")
        if len(self.outbound) > MAX_RPC_FRAME_BYTES:
            self._fail(f"the child wrote a frame over {MAX_RPC_FRAME_BYTES} bytes")

    def on_stdin(self) -> None:
        """Read frames sent by the worker; queue them for the child."""
        try:
            chunk = os.read(self.stdin, READ_CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            self._end_of_input()
            return
        self.inbound += chunk
        self._take_inbound()

    def on_child_writable(self) -> None:
        """Write as much of the backlog as the child's pipe takes."""
        if self.child_in is None or not self.pending:
            return
        try:
            written = os.write(self.child_in, self.pending)
        except BlockingIOError:
            return
        except OSError:  # the child closed its end: it is gone or done
            self._close_child_in()
            return
        del self.pending[:written]
        if not self.stdin_open and not self.pending:
            self._close_child_in()

    def await_end(self, timeout: float) -> bool:
        """After the run (reuse mode): read stdin up to the worker's ``end``, dropping frames
        meant for the child that is gone. True when it came within ``timeout`` seconds and
        nothing followed it, so the next line on stdin is the next submission."""
        deadline = time.monotonic() + timeout
        while self.stdin_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.stdin], [], [], remaining)[0]:
                return False
            self.on_stdin()
        return self.ended and not self.inbound

    def _take_inbound(self) -> None:
        while True:
            newline = self.inbound.find(b"\n")
            if newline < 0:
                break
            line = bytes(self.inbound[:newline])
            del self.inbound[: newline + 1]
            if line == END_LINE:
                self.ended = True
                self._end_of_input()
                return
            if len(line) > MAX_RPC_FRAME_BYTES + len(RPC_PREFIX):
                continue  # the worker caps frames too; never hand the child an oversized one
            if line.startswith(RPC_PREFIX) and self.child_in is not None:
                self.frames_in += 1
                self.pending += line[len(RPC_PREFIX) :] + b"\n"
        if len(self.inbound) > MAX_RPC_FRAME_BYTES:
            self.inbound.clear()
            self._end_of_input()
        if len(self.pending) > MAX_RPC_BACKLOG_BYTES:
            self._fail("the child stopped reading its frames")

    def _end_of_input(self) -> None:
        """No more frames will come: the child reads EOF once the backlog is written."""
        self.stdin_open = False
        if not self.pending:
            self._close_child_in()

    def _close_child_in(self) -> None:
        if self.child_in is not None:
            os.close(self.child_in)
            self.child_in = None
        self.pending.clear()

    def _fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        self._close_child_in()
        if self.child_out is not None:
            os.close(self.child_out)
            self.child_out = None
        self.outbound.clear()

    def close(self) -> None:
        self._close_child_in()
        if self.child_out is not None:
            os.close(self.child_out)
            self.child_out = None

    def fields(self) -> dict[str, object]:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "problem": self.problem,
        }
