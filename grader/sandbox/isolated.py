"""Isolated runs of hidden tests: a judge container, a learner container, frames between them.

The judge container runs the hidden tests with pytest and never executes the learner's code;
the learner container imports the learner's modules and answers the judge's requests. Neither
container can reach the other: the worker copies each ``rpc`` line from one attach stream to
the other, without parsing it, under a size cap per frame and a byte budget per direction.
The verdict's test results come from the judge's report only; the learner's report adds what
its supervisor saw (output, limits, a syntax error). See docs/harness.md, "Isolated runs".
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from ..domain import EnvironmentRef, Limits, Observation, RunRequest, RunStatus
from ..errors import HarnessProtocolError
from .protocol import (
    JUDGE_MARGIN_SECONDS,
    FinalReport,
    HarnessSubmission,
    parse_line,
)
from .report import to_observation
from .stream import AttachStream

if TYPE_CHECKING:
    from .runner import DockerSandbox

log = structlog.get_logger(__name__)

RPC_PREFIX = b"rpc "
END_LINE = b"end"
MAX_FRAME_BYTES = 1024 * 1024
"""As ``grader_harness.protocol.MAX_RPC_FRAME_BYTES``: a longer line is not relayed."""
MAX_RELAYED_BYTES = 64 * 1024 * 1024
"""What one side may send the other in one run; past it the channel is cut."""
LEARNER_GRACE_SECONDS = 2.0
"""How long the learner's report may take once the judge is done and the channel closed."""


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


def relay(
    judge: AttachStream,
    learner: AttachStream,
    judge_line: bytes,
    learner_line: bytes,
    deadline: float,
) -> PairReports:
    """Send both submissions, relay frames until the judge reports, then collect the learner's.

    A learner report that comes first (a syntax error, a crash, its time limit) ends the
    channel for the judge, whose pending request then fails; a learner that floods the channel
    is cut off the same way.
    """
    return _Relay(judge, learner, judge_line, learner_line).run(deadline)


class _Relay:
    def __init__(
        self, judge: AttachStream, learner: AttachStream, judge_line: bytes, learner_line: bytes
    ) -> None:
        self.judge = _Side("judge", judge, bytearray(judge_line))
        self.learner = _Side("learner", learner, bytearray(learner_line))
        self.cut: str | None = None

    def peer(self, side: _Side) -> _Side:
        return self.learner if side is self.judge else self.judge

    def run(self, deadline: float) -> PairReports:
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
        return PairReports(
            judge=self.judge.report,
            learner=self.learner.report,
            frames_to_learner=self.judge.frames,
            frames_to_judge=self.learner.frames,
            cut=self.cut,
        )

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


def combine(
    reports: PairReports,
    request: RunRequest,
    *,
    environment: EnvironmentRef,
    wall_limit: float,
    learner_oom: bool,
    container_id: str,
    pool_hit: bool,
) -> Observation:
    """One observation of an isolated run, from the judge's report and the learner's.

    The tests, collection errors, summary and warnings are the judge's (a process that never
    ran the learner's code); the output is the learner's; limits broken by the learner's
    process decide the run's status first.
    """
    base: dict[str, Any] = {
        "environment": environment,
        "mode": request.mode,
        "container_id": container_id,
        "pool_hit": pool_hit,
    }
    learner = _parse(reports.learner, "learner")
    if learner is not None and learner.status == "syntax_error":
        return Observation(
            status=RunStatus.SYNTAX_ERROR,
            syntax_error=learner.syntax_error,
            wall_seconds=learner.wall_seconds,
            cpu_seconds=learner.cpu_seconds,
            **base,
        )
    learner_obs = (
        to_observation(
            learner,
            environment=environment,
            mode=request.mode,
            requested_state=(),
            oom_killed=learner_oom,
            container_id=container_id,
            pool_hit=pool_hit,
            wall_limit=wall_limit,
            child_mode="serve",
        )
        if learner is not None
        else None
    )
    if learner_obs is None and learner_oom:
        return Observation(
            status=RunStatus.MEMORY_LIMIT_EXCEEDED,
            oom_killed=True,
            error="the learner's sandbox was killed for memory",
            **base,
        )
    judge = _parse(reports.judge, "judge")
    if judge is None:
        return Observation(
            status=RunStatus.TIME_LIMIT_EXCEEDED,
            timed_out=True,
            error="the hidden tests did not finish before the hard deadline",
            **base,
        )
    judged = to_observation(
        judge,
        environment=environment,
        mode=request.mode,
        requested_state=(),
        oom_killed=False,
        container_id=container_id,
        pool_hit=pool_hit,
        child_mode="judge",
    )
    status = judged.status  # the judge broke a limit: the learner's replies were too slow
    if learner_obs is not None and learner_obs.status is not RunStatus.COMPLETED:
        status = learner_obs.status  # the learner's process broke a limit first
    update: dict[str, Any] = {"status": status}
    if learner_obs is not None:
        update |= {
            "stdout": learner_obs.stdout,
            "stderr": learner_obs.stderr,
            "timed_out": learner_obs.timed_out,
            "oom_killed": learner_obs.oom_killed,
            "output_limit_exceeded": learner_obs.output_limit_exceeded,
            "cpu_seconds": _sum(judged.cpu_seconds, learner_obs.cpu_seconds),
            "peak_memory_bytes": learner_obs.peak_memory_bytes,
        }
    if reports.cut is not None:
        update["error"] = reports.cut
    return judged.model_copy(update=update)


def _parse(line: bytes | None, side: str) -> FinalReport | None:
    if line is None:
        return None
    report: FinalReport = parse_line(line, FinalReport)
    if report.status == "harness_error":
        raise HarnessProtocolError(f"the {side}'s harness failed: {report.error}")
    return report


def _sum(left: float | None, right: float | None) -> float | None:
    if left is None or right is None:
        return left if right is None else right
    return round(left + right, 6)


def run_isolated(
    sandbox: DockerSandbox, environment: str, request: RunRequest, limits: Limits
) -> Observation:
    """Run ``request``'s hidden tests in one container against its learner code in another."""
    if request.learner is None:
        raise ValueError("not an isolated request")
    judge_line = HarnessSubmission.of(request, limits).line()
    learner_line = HarnessSubmission.serving(request, limits).line()
    learner_request = request.model_copy(update={"files": request.learner.files, "learner": None})
    cap = sandbox.report_max + (limits.stdout_bytes + limits.stderr_bytes) * 2 + MAX_FRAME_BYTES
    with sandbox.busy():
        judge, judge_warm = sandbox.take(environment, request, limits)
        try:
            learner, learner_warm = sandbox.take(environment, learner_request, limits)
        except BaseException:
            sandbox.destroy(judge)
            raise
        pair = (judge, learner)
        try:
            for ready in pair:
                ready.stream.stdout_cap = cap
            deadline = time.monotonic() + limits.wall_seconds + JUDGE_MARGIN_SECONDS
            reports = relay(
                judge.stream, learner.stream, judge_line, learner_line, deadline + sandbox.grace
            )
            learner_oom = False
            if reports.learner is None:
                stopped = sandbox.containers.stop(learner.container_id)
                learner_oom = bool(stopped.get("OOMKilled"))
            observation = combine(
                reports,
                request,
                environment=judge.image.ref,
                wall_limit=limits.wall_seconds,
                learner_oom=learner_oom,
                container_id=learner.container_id,
                pool_hit=judge_warm and learner_warm,
            )
            if reports.learner is None and not learner_oom and learner.stream.tampered:
                observation = observation.model_copy(
                    update={
                        "status": RunStatus.OUTPUT_LIMIT_EXCEEDED,
                        "output_limit_exceeded": True,
                        "error": "the learner wrote into its harness's report channel",
                    }
                )
        except BaseException as exc:
            log.warning(
                "isolated_run_failed",
                judge_container_id=judge.container_id,
                container_id=learner.container_id,
                error=repr(exc)[:300],
            )
            for ready in pair:
                sandbox.destroy(ready)
            raise
    for ready in pair:
        sandbox.release(ready)
    log.info(
        "sandbox_isolated_run",
        judge_container_id=judge.container_id,
        container_id=learner.container_id,
        environment=environment,
        status=observation.status.value,
        frames_to_learner=reports.frames_to_learner,
        frames_to_judge=reports.frames_to_judge,
        cut=reports.cut,
        wall_seconds=observation.wall_seconds,
    )
    return observation
