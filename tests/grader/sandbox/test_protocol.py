"""The harness report is hostile input: strict schemas, caps, and no promotion from the child."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from grader.domain import ChildReportStatus, EnvironmentRef, RunMode, RunStatus
from grader.errors import HarnessProtocolError
from grader.sandbox.protocol import FinalReport, ReadyEvent, parse_line
from grader.sandbox.report import to_observation

ENV = EnvironmentRef(name="env", image_id="sha256:" + "0" * 64)


def stream(text: str, total: int | None = None, truncated: bool = False) -> dict[str, Any]:
    data = text.encode()
    return {
        "b64": base64.b64encode(data).decode(),
        "bytes": total or len(data),
        "truncated": truncated,
    }


def report(**overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "event": "report",
        "version": 1,
        "status": "completed",
        "mode": "script",
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "output_limit_exceeded": False,
        "wall_seconds": 0.01,
        "cpu_seconds": 0.01,
        "max_rss_kib": 1000,
        "stdout": stream("hi\n"),
        "stderr": stream(""),
        "child_report": {
            "status": "ok",
            "report": {
                "mode": "script",
                "exception": None,
                "state": {"x": {"status": "ok", "value": 3}, "y": {"status": "ok", "value": 1}},
            },
        },
        "memory": {"peak_bytes": 1 << 20, "oom_kills": 0},
        "harness_seconds": 0.02,
    }
    body.update(overrides)
    return json.dumps(body).encode()


def observe(
    line: bytes,
    state: tuple[str, ...] = ("x",),
    oom: bool = False,
    wall_limit: float | None = None,
):
    parsed = parse_line(line, FinalReport)
    return to_observation(
        parsed,
        environment=ENV,
        mode=RunMode.SCRIPT,
        requested_state=state,
        oom_killed=oom,
        container_id="c1",
        pool_hit=False,
        wall_limit=wall_limit,
    )


def test_a_clean_report_becomes_an_observation() -> None:
    """Decoded output, the exit code and the requested state come through."""
    obs = observe(report())
    assert obs.status is RunStatus.COMPLETED
    assert obs.stdout.text == "hi\n"
    assert obs.state["x"].value == 3
    assert obs.peak_memory_bytes == 1 << 20


def test_unrequested_state_names_are_dropped() -> None:
    """A (possibly forged) child report cannot add names that were not asked for."""
    assert set(observe(report()).state) == {"x"}


def test_unknown_fields_are_a_protocol_error() -> None:
    """The supervisor's schema forbids unknown fields: malformed means sandbox trouble."""
    with pytest.raises(HarnessProtocolError, match="malformed FinalReport"):
        parse_line(report(verdict="passed"), FinalReport)


def test_garbage_is_a_protocol_error() -> None:
    """Non-JSON on the report channel is a protocol error, not a result."""
    with pytest.raises(HarnessProtocolError):
        parse_line(b"{'not': json", FinalReport)
    with pytest.raises(HarnessProtocolError):
        parse_line(b'{"event": "ready"}', ReadyEvent)


def test_a_malformed_child_report_is_marked_invalid_and_contributes_nothing() -> None:
    """A child report that fails its schema leaves no exception, tests or state behind."""
    line = report(child_report={"status": "ok", "report": {"mode": "script", "tests": "all"}})
    obs = observe(line)
    assert obs.child_report is ChildReportStatus.INVALID
    assert obs.state == {}
    assert obs.status is RunStatus.COMPLETED


def test_a_child_report_for_another_mode_is_invalid() -> None:
    """A pytest-shaped report for a script run is refused."""
    line = report(child_report={"status": "ok", "report": {"mode": "pytest", "tests": []}})
    assert observe(line).child_report is ChildReportStatus.INVALID


def test_missing_child_report() -> None:
    """No child report is recorded as missing with an explanation."""
    obs = observe(report(child_report={"status": "missing"}))
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.child_report_error == "the snippet's process ended without a report"


def test_oom_wins_over_timeout() -> None:
    """A run that hit both the memory and the time limit is a memory verdict."""
    obs = observe(report(timed_out=True, memory={"peak_bytes": 1, "oom_kills": 1}))
    assert obs.status is RunStatus.MEMORY_LIMIT_EXCEEDED
    assert obs.oom_killed is True


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"timed_out": True}, RunStatus.TIME_LIMIT_EXCEEDED),
        ({"output_limit_exceeded": True}, RunStatus.OUTPUT_LIMIT_EXCEEDED),
        (
            {
                "status": "syntax_error",
                "syntax_error": {
                    "type": "SyntaxError",
                    "message": "m",
                    "file": "main.py",
                    "line": 1,
                },
            },
            RunStatus.SYNTAX_ERROR,
        ),
    ],
)
def test_run_level_statuses(fields: dict[str, Any], status: RunStatus) -> None:
    """Limit flags and syntax errors map onto run-level statuses."""
    assert observe(report(**fields)).status is status


def test_a_run_that_reached_the_wall_limit_is_over_time() -> None:
    """A run that finished only at or past the limit (a late deadline) is time_limit_exceeded."""
    late = observe(report(wall_seconds=6.1), wall_limit=5.0)
    assert (late.status, late.timed_out) == (RunStatus.TIME_LIMIT_EXCEEDED, True)
    assert observe(report(wall_seconds=5.0), wall_limit=5.0).status is RunStatus.TIME_LIMIT_EXCEEDED
    in_time = observe(report(wall_seconds=4.9), wall_limit=5.0)
    assert (in_time.status, in_time.timed_out) == (RunStatus.COMPLETED, False)


def test_a_syntax_error_takes_the_run_s_own_wall_time() -> None:
    """A syntax error's wall time is the run's, not the age of the container that ran it."""
    line = report(
        status="syntax_error",
        syntax_error={"type": "RecursionError", "message": "too deep", "file": "main.py"},
        wall_seconds=0.004,
        harness_seconds=118.0,
    )
    obs = observe(line)
    assert obs.status is RunStatus.SYNTAX_ERROR
    assert obs.wall_seconds == 0.004
    assert obs.syntax_error is not None and obs.syntax_error.type == "RecursionError"


def test_engine_oom_flag_counts_too() -> None:
    """The engine's OOMKilled flag alone makes a memory verdict."""
    assert observe(report(), oom=True).status is RunStatus.MEMORY_LIMIT_EXCEEDED


def test_invalid_base64_is_a_protocol_error() -> None:
    """Captured output that is not base64 is a protocol error."""
    bad = {"b64": "***", "bytes": 3, "truncated": False}
    with pytest.raises(HarnessProtocolError, match="not base64"):
        observe(report(stdout=bad))


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    """Output bytes that are not UTF-8 decode with replacement characters."""
    raw = {"b64": base64.b64encode(b"a\xffb\x00").decode(), "bytes": 4, "truncated": False}
    assert observe(report(stdout=raw)).stdout.text == "a\ufffdb\x00"
