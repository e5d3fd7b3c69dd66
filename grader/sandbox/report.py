"""The supervisor's report, validated, turned into an ``Observation`` (with what the engine saw).

Two trust levels (``protocol.py``): the supervisor's own fields decide statuses; the child's
report contributes claims only, and only the state names that were asked for.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..domain import (
    CapturedStream,
    CaseRun,
    ChildReportStatus,
    EnvironmentRef,
    Observation,
    RunMode,
    RunStatus,
)
from .protocol import ChildReport, FinalReport, WireCase, WireChildEnvelope, WireMemory


def _child(
    envelope: WireChildEnvelope | None, requested: tuple[str, ...], mode: str
) -> tuple[ChildReport | None, ChildReportStatus, str | None]:
    if envelope is None or envelope.status == "missing":
        return None, ChildReportStatus.MISSING, "the snippet's process ended without a report"
    if envelope.status == "invalid" or envelope.report is None:
        return None, ChildReportStatus.INVALID, envelope.reason or "invalid"
    try:
        child = ChildReport.model_validate(envelope.report)
    except ValidationError as exc:
        return None, ChildReportStatus.INVALID, f"schema: {str(exc)[:300]}"
    if child.mode != mode:
        return None, ChildReportStatus.INVALID, "report is for another mode"
    # Only the names we asked for; anything else in a forged report is dropped.
    state = {k: v for k, v in child.state.items() if k in requested}
    return child.model_copy(update={"state": state}), ChildReportStatus.OK, None


def _over_time(wall_seconds: float | None, limit: float | None) -> bool:
    return wall_seconds is not None and limit is not None and wall_seconds >= limit


def to_observation(
    report: FinalReport,
    *,
    environment: EnvironmentRef,
    mode: RunMode,
    requested_state: tuple[str, ...],
    oom_killed: bool,
    container_id: str | None,
    pool_hit: bool,
    wall_limit: float | None = None,
    child_mode: str | None = None,
) -> Observation:
    """Combine the supervisor's report with what the engine saw into an ``Observation``.

    A run whose wall time reached ``wall_limit`` is over time even when it finished: on a
    starved host the supervisor's own deadline can fire late.
    """
    base: dict[str, Any] = {
        "environment": environment,
        "mode": mode,
        "container_id": container_id,
        "pool_hit": pool_hit,
        "oom_killed": oom_killed,
    }
    if report.status == "harness_error":
        return Observation(status=RunStatus.SANDBOX_ERROR, error=report.error, **base)
    if report.status == "syntax_error":
        return Observation(
            status=RunStatus.SYNTAX_ERROR,
            syntax_error=report.syntax_error,
            wall_seconds=report.wall_seconds,
            cpu_seconds=report.cpu_seconds,
            **base,
        )
    memory = report.memory or WireMemory()
    cases = tuple(case_run(case) for case in report.cases or ())
    # A case's OOM kill is that case's; the container's counter speaks for a plain run only.
    oom = oom_killed or (bool(memory.oom_kills) and report.cases is None)
    child, child_status, child_error = _child(
        report.child_report, requested_state, child_mode or mode.value
    )
    if oom:
        status = RunStatus.MEMORY_LIMIT_EXCEEDED
    elif report.timed_out or _over_time(report.wall_seconds, wall_limit):
        status = RunStatus.TIME_LIMIT_EXCEEDED
    elif report.output_limit_exceeded:
        status = RunStatus.OUTPUT_LIMIT_EXCEEDED
    else:
        status = RunStatus.COMPLETED
    peak = memory.peak_bytes
    if peak is None and report.max_rss_kib is not None:
        peak = report.max_rss_kib * 1024
    return Observation(
        status=status,
        stdout=report.stdout.captured() if report.stdout else CapturedStream(),
        stderr=report.stderr.captured() if report.stderr else CapturedStream(),
        exit_code=report.exit_code,
        signal=report.signal,
        exception=child.exception if child else None,
        tests=tuple(child.tests) if child else (),
        collection_errors=tuple(child.collection_errors) if child else (),
        pytest_exit_code=child.pytest_exit_code if child else None,
        pytest_summary=dict(child.summary) if child else {},
        warnings=tuple(child.warnings) if child else (),
        state=child.state if child else {},
        child_report=child_status,
        child_report_error=child_error,
        wall_seconds=report.wall_seconds,
        cpu_seconds=report.cpu_seconds,
        peak_memory_bytes=peak,
        timed_out=report.timed_out or _over_time(report.wall_seconds, wall_limit),
        output_limit_exceeded=report.output_limit_exceeded,
        cases=cases,
        **{**base, "oom_killed": oom},
    )


def case_run(case: WireCase) -> CaseRun:
    """The case as observed: its status from the supervisor's flags, never its own claims."""
    if not case.ran:
        return CaseRun(ran=False, status=RunStatus.TIME_LIMIT_EXCEEDED, wall_limit=case.wall_limit)
    timed_out = case.timed_out or _over_time(case.wall_seconds, case.wall_limit)
    if case.oom_killed:
        status = RunStatus.MEMORY_LIMIT_EXCEEDED
    elif timed_out:
        status = RunStatus.TIME_LIMIT_EXCEEDED
    elif case.output_limit_exceeded:
        status = RunStatus.OUTPUT_LIMIT_EXCEEDED
    else:
        status = RunStatus.COMPLETED
    child, _, _ = _child(case.child_report, (), "script")
    return CaseRun(
        status=status,
        stdout=case.stdout.captured() if case.stdout else CapturedStream(),
        stderr=case.stderr.captured() if case.stderr else CapturedStream(),
        exit_code=case.exit_code,
        signal=case.signal,
        exception=child.exception if child else None,
        wall_seconds=case.wall_seconds,
        wall_limit=case.wall_limit,
        cpu_seconds=case.cpu_seconds,
        timed_out=timed_out,
        oom_killed=case.oom_killed,
        output_limit_exceeded=case.output_limit_exceeded,
    )


def without_report(
    oom_killed: bool,
    deadline: bool,
    *,
    environment: EnvironmentRef,
    mode: RunMode,
    container_id: str,
    pool_hit: bool,
) -> Observation | None:
    """The observation of a run whose report never came, when the engine tells why: killed
    for memory, or past the hard deadline. None: no reason of the run's (ours, then)."""
    base: dict[str, Any] = {
        "environment": environment,
        "mode": mode,
        "container_id": container_id,
        "pool_hit": pool_hit,
    }
    if oom_killed:
        return Observation(
            status=RunStatus.MEMORY_LIMIT_EXCEEDED,
            oom_killed=True,
            error="the sandbox was killed for memory",
            **base,
        )
    if deadline:
        return Observation(
            status=RunStatus.TIME_LIMIT_EXCEEDED,
            timed_out=True,
            error="no report before the hard deadline",
            **base,
        )
    return None


def noting_foreign_lines(observation: Observation, foreign_lines: int) -> Observation:
    """``observation``, noting the lines a snippet wrote into the report channel (gVisor lets
    it open ``/proc/1/fd/1``); they lacked the report key and were ignored."""
    if not foreign_lines or observation.error is not None:
        return observation
    note = f"{foreign_lines} line(s) written into the report channel were ignored"
    return observation.model_copy(update={"error": note})


def tampered_channel(**base: Any) -> Observation:
    """No report came, and the snippet wrote into the report channel: the learner's doing.

    Its output went where it must not, so the run is ``output_limit_exceeded``, never ours.
    """
    return Observation(
        status=RunStatus.OUTPUT_LIMIT_EXCEEDED,
        output_limit_exceeded=True,
        error="the snippet wrote into the harness's report channel; no report came",
        **base,
    )
