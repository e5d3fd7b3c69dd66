"""Stdin cases: the entry run once per case, each in a child of its own, in one container.

Every case gets a fresh copy of the submission's files (what an earlier case wrote is gone),
its own stdin, its own captured output and time, and an equal share of the time the run has
left: the wall limit bounds all cases together, and a case stuck in a loop costs its own
share, never a later case's. Expected outputs never come here: the worker compares.
"""

from __future__ import annotations

import time

from .submission import clear_workdir, write_files

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .submission import Job

CASE_FIELDS = (
    "exit_code",
    "signal",
    "timed_out",
    "output_limit_exceeded",
    "wall_seconds",
    "stdout",
    "stderr",
    "child_report",
)


def run_cases(
    job: Job,
    supervise: Callable[..., dict[str, Any]],
    memory: Callable[[], dict[str, int | None]],
) -> dict[str, Any]:
    """Run every case; the report's fields (a compile failure ends the run as a whole)."""
    started = time.monotonic()
    deadline = started + job.wall_seconds
    cases: list[dict[str, Any]] = []
    cpu = 0.0
    oom_before = memory().get("oom_kills") or 0
    for index, stdin in enumerate(job.cases):
        if index:
            clear_workdir()
            write_files(job.files)
        share = (deadline - time.monotonic()) / (len(job.cases) - index)
        if share <= 0:
            cases.append({"ran": False, "wall_limit": 0.0})
            continue
        fields = supervise(job, stdin=stdin, wall=share)
        if fields["status"] == "syntax_error":
            return fields
        oom_now = (fields.get("memory") or {}).get("oom_kills") or 0
        case = {name: fields.get(name) for name in CASE_FIELDS}
        case["child_report"] = _exception_only(case["child_report"])
        case_cpu = float(fields.get("cpu_seconds") or 0.0) - cpu
        cpu += case_cpu
        case.update(
            ran=True,
            wall_limit=round(share, 6),
            cpu_seconds=round(case_cpu, 6),
            oom_killed=oom_now > oom_before,
        )
        oom_before = oom_now
        cases.append(case)
    return {
        "status": "completed",
        "timed_out": False,
        "output_limit_exceeded": False,
        "wall_seconds": round(time.monotonic() - started, 6),
        "cpu_seconds": round(cpu, 6),
        "memory": memory(),
        "cases": cases,
    }


def _exception_only(envelope: Any) -> Any:
    """Of a case's child report, only what a case uses (its exception): a size bound per case."""
    if not isinstance(envelope, dict) or envelope.get("status") != "ok":
        return envelope
    report = envelope.get("report") or {}
    return {
        "status": "ok",
        "report": {"mode": report.get("mode"), "exception": report.get("exception")},
    }
