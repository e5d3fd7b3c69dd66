"""The worker's relay of an isolated run's frames, between the judge's container and the learner's.

Neither container can reach the other: the worker copies each ``rpc`` line from one attach
stream to the other, without parsing it, under a size cap per frame and a byte budget per
direction, until the judge reports; then it collects the learner's report. See
docs/harness.md, "Isolated runs".
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass

from .stream import AttachStream

RPC_PREFIX = b"rpc "
END_LINE = b"end"
MAX_FRAME_BYTES = 1024 * 1024
"""As ``grader_harness.protocol.MAX_RPC_FRAME_BYTES``: a longer line is not relayed."""
MAX_RELAYED_BYTES = 64 * 1024 * 1024
"""What one side may send the other in one run; past it the channel is cut."""
LEARNER_GRACE_SECONDS = 2.0
"""How long the learner's report may take once the judge is done and the channel closed."""
CLOSE_TIMEOUT_SECONDS = 2.0
"""How long sending a reusable judge the end of its channel may take."""


@dataclass
class _Side:
    name: str
    stream: AttachStream
    outbox: bytearray
    report: bytes | None = None
    relayed: int = 0
    frames: int = 0
    ended: bool = False  # we sent it ``end``: nothing more goes its way

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.outbox += END_LINE + b"\n"


@dataclass
class PairReports:
    """The two report lines (None when one never came) and what the relay saw."""

    judge: bytes | None
    learner: bytes | None
    frames_to_learner: int = 0
    frames_to_judge: int = 0
    cut: str | None = None
    judge_closed: bool = False
    """The judge was sent ``end`` after every frame meant for it (it may then be reused)."""


def relay(
    judge: AttachStream,
    learner: AttachStream,
    judge_line: bytes,
    learner_line: bytes,
    deadline: float,
    *,
    close_judge: bool = False,
) -> PairReports:
    """Send both submissions, relay frames until the judge reports, then collect the learner's.

    A learner report that comes first (a syntax error, a crash, its time limit) ends the
    channel for the judge, whose pending request then fails; a learner that floods the channel
    is cut off the same way. With ``close_judge`` (a judge kept for reuse) the judge is then
    sent what was still queued for it and ``end``, whose receipt its supervisor awaits.
    """
    return _Relay(judge, learner, judge_line, learner_line).run(deadline, close_judge)


class _Relay:
    def __init__(
        self, judge: AttachStream, learner: AttachStream, judge_line: bytes, learner_line: bytes
    ) -> None:
        self.judge = _Side("judge", judge, bytearray(judge_line))
        self.learner = _Side("learner", learner, bytearray(learner_line))
        self.cut: str | None = None

    def peer(self, side: _Side) -> _Side:
        return self.learner if side is self.judge else self.judge

    def run(self, deadline: float, close_judge: bool = False) -> PairReports:
        sides = (self.judge, self.learner)
        for side in sides:
            side.stream.sock.setblocking(False)
        try:
            limit = deadline
            while self.learner.report is None or self.judge.report is None:
                if self.judge.report is not None and limit == deadline:
                    limit = min(deadline, time.monotonic() + LEARNER_GRACE_SECONDS)
                if not self._step(limit):
                    break
        finally:
            for side in sides:
                side.stream.sock.setblocking(True)
        closed = close_judge and self._close_judge()
        return PairReports(
            judge=self.judge.report,
            learner=self.learner.report,
            frames_to_learner=self.judge.frames,
            frames_to_judge=self.learner.frames,
            cut=self.cut,
            judge_closed=closed,
        )

    def _close_judge(self) -> bool:
        """Send the judge the rest of its frames and ``end`` (once); False if it cannot be."""
        judge = self.judge
        if judge.report is None or judge.stream.eof:
            return False
        judge.end()
        try:
            judge.stream.sock.settimeout(CLOSE_TIMEOUT_SECONDS)
            judge.stream.sock.sendall(judge.outbox)
        except OSError:
            return False
        finally:
            judge.stream.sock.settimeout(None)
        judge.outbox.clear()
        return True

    def _step(self, limit: float) -> bool:
        """Wait for one round of reads and writes; False when nothing more can happen."""
        remaining = limit - time.monotonic()
        reading = [s for s in (self.judge, self.learner) if s.report is None and not s.stream.eof]
        if remaining <= 0 or not reading:
            return False
        writing = [s for s in (self.judge, self.learner) if s.outbox and not s.stream.eof]
        readable, writable, _ = select.select(
            [s.stream.sock for s in reading], [s.stream.sock for s in writing], [], remaining
        )
        for side in writing:
            if side.stream.sock in writable:
                _flush(side)
        for side in reading:
            if side.stream.sock in readable:
                side.stream.pump()
                self._lines(side)
        return True

    def _lines(self, side: _Side) -> None:
        while side.report is None and (line := side.stream.next_line()) is not None:
            if side.stream.is_keyed(line):
                side.report = line
                self.peer(side).end()  # the channel is over for the other side too
                return
            if line.startswith(RPC_PREFIX):
                self._forward(side, line)
            elif line:  # neither a frame nor the supervisor's: a snippet wrote it (gVisor)
                side.stream.foreign_lines += 1

    def _forward(self, side: _Side, line: bytes) -> None:
        peer = self.peer(side)
        if peer.ended or peer.report is not None:
            return
        side.relayed += len(line)
        side.frames += 1
        problem = None
        if len(line) > MAX_FRAME_BYTES + len(RPC_PREFIX):
            problem = f"the {side.name} sent a frame over {MAX_FRAME_BYTES} bytes"
        elif side.relayed > MAX_RELAYED_BYTES:
            problem = f"the {side.name} sent more than {MAX_RELAYED_BYTES} bytes"
        if problem is None:
            peer.outbox += line + b"\n"
            return
        self.cut = self.cut or problem
        peer.end()
        side.end()


def _flush(side: _Side) -> None:
    try:
        sent = side.stream.sock.send(side.outbox)
    except BlockingIOError:
        return
    except OSError:  # the container is gone; its report (or its absence) tells the rest
        side.outbox.clear()
        return
    del side.outbox[:sent]
