"""The q5 row's pure parts: the verdict check, frames from a log, net CPU, throughput, targets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.common import PhaseResult, Sample
from bench.isolated_report import (
    IsolatedRun,
    LoopPhase,
    attributed_per_submission,
    net_cpu_per_submission,
    throughput,
)
from bench.probes import event_counts, frames_from_log
from bench.workloads import q5_problem

TESTS = ("test_a", "test_b")


def verdict(status: str = "passed", **outcomes: str) -> dict[str, Any]:
    tests = outcomes or dict.fromkeys(TESTS, "passed")
    return {
        "status": status,
        "reason": "why",
        "tests": [{"name": name, "status": outcome} for name, outcome in tests.items()],
    }


def phase(cpu: float, window: float, ok: int, failed: int = 0, wall: float = 10.0) -> PhaseResult:
    samples = [Sample(0.1, True) for _ in range(ok)]
    samples += [Sample(0.1, False, error="x") for _ in range(failed)]
    return PhaseResult(2, samples, wall, cpu, window)


def test_a_full_pass_of_exactly_the_expected_tests_is_no_problem() -> None:
    """A passed verdict with every expected test passed, and no other, is a good sample."""
    assert q5_problem(verdict(), TESTS) is None


def test_a_verdict_other_than_passed_is_a_problem() -> None:
    """A failed verdict is an error sample, with its status and reason."""
    assert q5_problem(verdict("failed"), TESTS) == "verdict failed: why"


def test_a_failed_test_under_a_passed_verdict_is_a_problem() -> None:
    """Each test must have passed, whatever the verdict's status says."""
    problem = q5_problem(verdict(test_a="passed", test_b="failed"), TESTS)
    assert problem == "tests not passed: test_b=failed"


def test_missing_and_unexpected_tests_are_problems() -> None:
    """Fewer tests, or other tests, than q5's are not its full pass."""
    assert q5_problem(verdict(test_a="passed"), TESTS) == "tests missing: test_b"
    extra = verdict(test_a="passed", test_b="passed", test_c="passed")
    assert q5_problem(extra, TESTS) == "tests not expected: test_c"
    assert q5_problem({"status": "passed"}, TESTS) == "tests missing: test_a, test_b"


def test_a_test_reported_twice_is_a_problem() -> None:
    """A duplicated test name never counts as two passes."""
    doubled = verdict()
    doubled["tests"].append({"name": "test_a", "status": "passed"})
    assert q5_problem(doubled, TESTS) == "test reported twice: test_a"


def test_frames_come_from_isolated_run_lines_only() -> None:
    """Frame counts are read from sandbox_isolated_run JSON lines; others and junk are skipped."""
    lines = [
        json.dumps(
            {"event": "sandbox_isolated_run", "frames_to_learner": 15, "frames_to_judge": 14}
        ),
        "[2026-12-03 INFO] celery ready",
        json.dumps({"event": "graded", "frames_to_learner": 1, "frames_to_judge": 1}),
        "prefix "
        + json.dumps(
            {"event": "sandbox_isolated_run", "frames_to_learner": 3, "frames_to_judge": 2}
        ),
        '{"event": "sandbox_isolated_run", broken',
        json.dumps(
            {"event": "sandbox_isolated_run", "frames_to_learner": "9", "frames_to_judge": 9}
        ),
    ]
    assert frames_from_log("\n".join(lines)) == [(15, 14), (3, 2)]


def test_event_counts_count_json_lines_by_event() -> None:
    """Diagnostics: each JSON line's event is counted; other lines are ignored."""
    text = "\n".join(['{"event": "a"}', "plain", '{"event": "b"}', '{"event": "a"}', "{bad"])
    assert event_counts(text) == {"a": 2, "b": 1}


def test_net_cpu_removes_the_background_share_of_each_window() -> None:
    """Net CPU per submission = sum(cpu - background x window) / submissions, over phases."""
    loops = [
        LoopPhase("isolated", phase(cpu=10.0, window=4.0, ok=4), background=0.5),
        LoopPhase("isolated", phase(cpu=7.0, window=2.0, ok=3, failed=1), background=1.0),
    ]
    assert net_cpu_per_submission(loops) == pytest.approx((8.0 + 5.0) / 8)
    assert net_cpu_per_submission([]) is None


def test_throughput_counts_only_successful_submissions() -> None:
    """Throughput at c=2 = successful submissions / summed wall time of the phases."""
    loops = [
        LoopPhase("e2e", phase(1.0, 1.0, ok=6, failed=2, wall=4.0), 0.0),
        LoopPhase("e2e", phase(1.0, 1.0, ok=2, wall=4.0), 0.0),
    ]
    assert throughput(loops) == pytest.approx(1.0)
    assert throughput([LoopPhase("e2e", phase(1.0, 1.0, ok=0, failed=3), 0.0)]) is None


def test_targets_use_the_paced_p50_and_the_net_cpu_ratio() -> None:
    """The end-to-end p50 is judged on the paced phase; CPU on isolated / in-process net."""
    run = IsolatedRun(meta={})
    run.paced["e2e"] = PhaseResult(1, [Sample(v, True) for v in (0.2, 0.3, 0.4)], 1.0, 1.0, 1.0)
    run.loops = [
        LoopPhase("in_process", phase(cpu=10.0, window=10.0, ok=10), background=0.0),
        LoopPhase("isolated", phase(cpu=20.0, window=10.0, ok=8), background=0.5),
    ]
    e2e, runner, cpu, ours = run.targets()
    assert (e2e["value"], e2e["met"]) == (pytest.approx(0.3), False)
    assert e2e["over_by"] == pytest.approx(1.2)
    assert (runner["value"], runner["met"]) == (None, None)
    assert cpu["value"] == pytest.approx((15.0 / 8) / 1.0)
    assert cpu["met"] is False
    assert (ours["value"], ours["met"]) == (None, None)  # no attributed CPU measured


def test_attributed_cpu_per_submission_needs_every_phase_measured() -> None:
    """Ours = (containers + processes CPU-s) / submissions; None when a phase lacks it."""
    loops = [
        LoopPhase("isolated", phase(cpu=9.0, window=1.0, ok=2), 0.0, attributed=(3.0, 1.0)),
        LoopPhase("isolated", phase(cpu=9.0, window=1.0, ok=2), 0.0, attributed=(1.5, 0.5)),
    ]
    assert attributed_per_submission(loops) == pytest.approx(6.0 / 4)
    assert (
        attributed_per_submission([*loops, LoopPhase("isolated", phase(1, 1, ok=1), 0.0)]) is None
    )
