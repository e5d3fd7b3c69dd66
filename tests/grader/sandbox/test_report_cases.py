"""Stdin cases in the supervisor's report: each case's status from the supervisor's flags."""

from __future__ import annotations

from typing import Any

import pytest

from grader.domain import RunStatus
from grader.errors import HarnessProtocolError
from tests.grader.sandbox.test_protocol import observe, report, stream


def wire_case(**overrides: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "ran": True,
        "wall_limit": 1.0,
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "output_limit_exceeded": False,
        "oom_killed": False,
        "wall_seconds": 0.02,
        "cpu_seconds": 0.01,
        "stdout": stream("5\n"),
        "stderr": stream(""),
        "child_report": {"status": "ok", "report": {"mode": "script", "exception": None}},
    }
    case.update(overrides)
    return case


def test_each_case_keeps_its_output_time_and_status() -> None:
    """Per case: decoded stdout, exit status, wall time and its share of the limit."""
    obs = observe(report(cases=[wire_case(), wire_case(stdout=stream("6\n"), exit_code=2)]))
    assert obs.status is RunStatus.COMPLETED
    assert [(c.stdout.text, c.exit_code, c.status) for c in obs.cases] == [
        ("5\n", 0, RunStatus.COMPLETED),
        ("6\n", 2, RunStatus.COMPLETED),
    ]
    assert (obs.cases[0].wall_seconds, obs.cases[0].wall_limit) == (0.02, 1.0)


def test_case_limits_come_from_the_supervisors_flags() -> None:
    """Time, memory and output limits per case; a case at its share's end is over time."""
    obs = observe(
        report(
            cases=[
                wire_case(timed_out=True),
                wire_case(oom_killed=True, exit_code=None, signal=9),
                wire_case(output_limit_exceeded=True),
                wire_case(wall_seconds=1.0),
                wire_case(ran=False, wall_limit=0.0),
            ],
            memory={"peak_bytes": 1 << 20, "oom_kills": 1},
        )
    )
    assert [c.status for c in obs.cases] == [
        RunStatus.TIME_LIMIT_EXCEEDED,
        RunStatus.MEMORY_LIMIT_EXCEEDED,
        RunStatus.OUTPUT_LIMIT_EXCEEDED,
        RunStatus.TIME_LIMIT_EXCEEDED,
        RunStatus.TIME_LIMIT_EXCEEDED,
    ]
    assert obs.cases[4].ran is False
    # one case's OOM kill is that case's: the run as a whole completed
    assert obs.status is RunStatus.COMPLETED


def test_a_cases_own_claims_cannot_change_its_status() -> None:
    """A child report claiming anything else only contributes its exception."""
    claims = {
        "status": "ok",
        "report": {"mode": "script", "exception": {"type": "E", "message": "m"}},
    }
    obs = observe(report(cases=[wire_case(child_report=claims, exit_code=1)]))
    case = obs.cases[0]
    assert case.exception is not None and case.exception.type == "E"
    assert (case.status, case.exit_code) == (RunStatus.COMPLETED, 1)


def test_cases_are_capped_and_strict() -> None:
    """At most 50 cases; unknown fields are a protocol error."""
    with pytest.raises(HarnessProtocolError, match="at most 50 items"):
        observe(report(cases=[wire_case()] * 51))
    with pytest.raises(HarnessProtocolError, match="Extra inputs are not permitted"):
        observe(report(cases=[wire_case(passed=True)]))
