"""Isolated runs of hidden tests: a judge container, a learner container, frames between them.

The judge container runs the hidden tests with pytest and never executes the learner's code;
the learner container imports the learner's modules and answers the judge's requests. Neither
container can reach the other: the worker relays their frames (``frames.py``). A judge is
reused for its suite's next run when judges are reused (``reuse.py``, ``judge_shelf``). The
verdict's test results come from the judge's report only; the learner's report adds what
its supervisor saw (output, limits, a syntax error). See docs/harness.md, "Isolated runs".
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from ..domain import EnvironmentRef, Limits, Observation, RunRequest, RunStatus
from ..errors import HarnessProtocolError
from .frames import MAX_FRAME_BYTES, PairReports, relay
from .preimport import PreimportProfile
from .protocol import (
    JUDGE_MARGIN_SECONDS,
    FinalReport,
    HarnessSubmission,
    parse_line,
)
from .report import to_observation
from .reuse import suite_of

if TYPE_CHECKING:
    from .ready import ReadyContainer
    from .runner import DockerSandbox

log = structlog.get_logger(__name__)


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
    """Run ``request``'s hidden tests in one container against its learner code in another.

    The learner's container is always a fresh one. The judge's is a used one of the same
    suite when judges are reused (``ReuseSettings.judges``) and one is waiting; after a plain
    run it goes back on ``sandbox.judges`` once its supervisor has restored and verified it.
    """
    if request.learner is None:
        raise ValueError("not an isolated request")
    judge_line = HarnessSubmission.of(request, limits).line()
    learner_line = HarnessSubmission.serving(request, limits).line()
    learner_request = request.model_copy(update={"files": request.learner.files, "learner": None})
    cap = sandbox.report_max + (limits.stdout_bytes + limits.stderr_bytes) * 2 + MAX_FRAME_BYTES
    suite = suite_of(judge_line) if sandbox.judges.enabled else None
    learner_profile = sandbox.learner_profile(environment, request.learner.files)
    with sandbox.busy():
        judge, judge_warm = _take_judge(sandbox, environment, request, limits, suite)
        try:
            learner, learner_warm = sandbox.take(
                environment, learner_request, limits, profile=learner_profile
            )
        except BaseException:
            sandbox.destroy(judge)
            raise
        pair = (judge, learner)
        try:
            for ready in pair:
                ready.stream.stdout_cap = cap
            deadline = time.monotonic() + limits.wall_seconds + JUDGE_MARGIN_SECONDS
            reports = relay(
                judge.stream,
                learner.stream,
                judge_line,
                learner_line,
                deadline + sandbox.grace,
                close_judge=suite is not None and judge.reuse,
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
    sandbox.release(learner)
    if suite is not None and reports.judge_closed and reports.judge and reports.cut is None:
        sandbox.judges.after_run(judge, _judge_alone(reports.judge, request, judge), suite)
    else:
        sandbox.release(judge)
    log.info(
        "sandbox_isolated_run",
        judge_container_id=judge.container_id,
        container_id=learner.container_id,
        environment=environment,
        status=observation.status.value,
        frames_to_learner=reports.frames_to_learner,
        frames_to_judge=reports.frames_to_judge,
        cut=reports.cut,
        judge_runs=judge.runs,
        wall_seconds=observation.wall_seconds,
    )
    return observation


def _take_judge(
    sandbox: DockerSandbox, environment: str, request: RunRequest, limits: Limits, suite: str | None
) -> tuple[ReadyContainer, bool]:
    """A judge container: a used one of ``suite``, a warm reusable one, or a fresh one."""
    if suite is None:
        return sandbox.take(environment, request, limits)
    key = (environment, PreimportProfile.JUDGE)
    used = sandbox.judges.take(key, suite, limits)
    if used is not None:
        return used, True
    warm = sandbox.pool.take(key, limits) if sandbox.pool is not None else None
    if warm is not None:
        return warm, True
    return sandbox.prestart(environment, limits, profile=PreimportProfile.JUDGE), False


def _judge_alone(report: bytes, request: RunRequest, judge: ReadyContainer) -> Observation:
    """The judge's own run, which alone decides whether its container may serve again."""
    return to_observation(
        parse_line(report, FinalReport),
        environment=judge.image.ref,
        mode=request.mode,
        requested_state=(),
        oom_killed=False,
        container_id=judge.container_id,
        pool_hit=True,
        child_mode="judge",
    )
