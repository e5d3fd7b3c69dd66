"""The io kind: each case judged on what the supervisor saw, and partial credit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from grader.domain import CapturedStream, CaseRun, Limits, RunMode, RunStatus
from grader.domain.challenge import Challenge
from grader.domain.compare import compare
from grader.domain.grading import request_for
from grader.domain.io import IoCase, IoExpectation
from grader.domain.observation import ExceptionInfo
from grader.domain.validation import first_difference, summarize
from grader.domain.verdict import VerdictStatus
from grader.sandbox.protocol import HarnessSubmission
from grader.sandbox.testing import completed

CHALLENGE: dict[str, Any] = {
    "id": "sum",
    "set": "io-set",
    "title": "Sum",
    "kind": "io",
    "prompt": "Add two numbers.",
    "code": "a, b = map(int, input().split())\nprint(a + b)\n",
    "expectation": {
        "io": {
            "cases": [
                {"name": "small", "stdin": "2 3\n", "stdout": "5\n"},
                {"stdin": "10 -4\n", "stdout": "6", "match": "normalized", "points": 2},
                {"stdin": "1 1\n", "stdout": "[0-9]+\n", "match": "regex", "points": 3},
            ]
        }
    },
}


def challenge(**changes: Any) -> Challenge:
    return Challenge.model_validate({**CHALLENGE, **changes})


def case(stdout: str, **fields: Any) -> CaseRun:
    fields.setdefault("exit_code", 0)
    return CaseRun(
        stdout=CapturedStream(text=stdout, bytes=len(stdout)), wall_seconds=0.01, **fields
    )


def graded(*cases: CaseRun) -> Any:
    rule = challenge().expectation
    assert rule is not None
    return compare(challenge().kind, rule, completed("env", cases=cases))


def test_every_case_passing_is_a_pass_with_full_points() -> None:
    """Three matching cases: passed, 6 of 6 points, each case's time kept."""
    verdict = graded(case("5\n"), case(" 6 \n"), case("2\n"))
    assert verdict.status is VerdictStatus.PASSED
    assert (verdict.points, verdict.max_points, verdict.score) == (6.0, 6.0, 1.0)
    assert [(t.name, t.status, t.points) for t in verdict.tests] == [
        ("small", "passed", 1.0),
        ("case 2", "passed", 2.0),
        ("case 3", "passed", 3.0),
    ]
    assert verdict.tests[0].wall_seconds == 0.01
    assert verdict.reason == "all 3 cases passed"


def test_partial_credit_is_the_points_of_the_passing_cases() -> None:
    """A wrong middle case: failed, 4 of 6 points, its diff and output kept."""
    verdict = graded(case("5\n"), case("7\n"), case("2\n"))
    assert verdict.status is VerdictStatus.FAILED
    assert (verdict.points, verdict.score) == (4.0, 4 / 6)
    wrong = verdict.tests[1]
    assert (wrong.status, wrong.points, wrong.output) == ("failed", 0.0, "7\n")
    assert wrong.message == "output does not match (normalized)"
    assert wrong.diff == verdict.diff
    assert "-6" in (wrong.diff or "") and "+7" in (wrong.diff or "")
    assert verdict.reason == (
        "1 of 3 cases did not pass: case 2 (first: case 2: output does not match (normalized))"
    )


def test_matching_output_with_a_failing_exit_status_is_not_a_pass() -> None:
    """The supervisor's exit status counts: a crash after the right answer fails the case."""
    raised = ExceptionInfo(type="ValueError", message="late")
    verdict = graded(case("5\n", exit_code=1, exception=raised), case("6"), case("2\n"))
    assert verdict.tests[0].status == "failed"
    assert verdict.tests[0].message == (
        "the output matches, but the process exited with status 1; it raised ValueError: late"
    )
    killed = graded(case("5\n", exit_code=None, signal=9), case("6"), case("2\n"))
    assert killed.tests[0].message == (
        "the output matches, but the process exited with status signal 9"
    )


def test_limits_are_per_case_verdicts() -> None:
    """A case over its time share, memory or output is that status; the others still count."""
    verdict = graded(
        case("", status=RunStatus.TIME_LIMIT_EXCEEDED, timed_out=True, wall_limit=1.5),
        case("", status=RunStatus.MEMORY_LIMIT_EXCEEDED, oom_killed=True),
        case("2\n"),
    )
    assert [t.status for t in verdict.tests] == [
        "time_limit_exceeded",
        "memory_limit_exceeded",
        "passed",
    ]
    assert verdict.tests[0].message == "time limit exceeded (its share: 1.50 s)"
    assert verdict.points == 3.0


def test_cases_that_did_not_run_score_nothing() -> None:
    """No time left, or fewer cases reported than expected: not_run, zero points."""
    verdict = graded(case("5\n"), CaseRun(ran=False, status=RunStatus.TIME_LIMIT_EXCEEDED))
    assert [t.status for t in verdict.tests] == ["passed", "not_run", "not_run"]
    assert verdict.tests[1].message == "no time was left for this case"
    assert verdict.points == 1.0


def test_a_run_level_failure_wins_over_the_cases() -> None:
    """The whole container over time (no report): the run's status, no partial credit."""
    rule = challenge().expectation
    assert rule is not None
    obs = completed("env", status=RunStatus.TIME_LIMIT_EXCEEDED, cases=(case("5\n"),))
    assert compare(challenge().kind, rule, obs).status is VerdictStatus.TIME_LIMIT_EXCEEDED


def test_only_the_stdins_enter_the_sandbox() -> None:
    """The run request carries each case's stdin; no expected output is in the harness line."""
    item = challenge()
    request = request_for(item, "print(1)", item.expectation)
    assert request.mode is RunMode.SCRIPT
    assert request.cases == ("2 3\n", "10 -4\n", "1 1\n")
    line = json.loads(HarnessSubmission.of(request, Limits()).line())
    assert line["cases"] == ["2 3\n", "10 -4\n", "1 1\n"]
    assert line["stdin"] == ""
    assert "[0-9]+" not in json.dumps(line)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "pytest"}, "io cases run scripts; remove 'mode: pytest'"),
        (
            {"kind": "output"},
            "the expectation must set exactly 'output'",
        ),
    ],
)
def test_io_challenges_are_scripts_of_their_own_kind(changes: dict[str, Any], message: str) -> None:
    """io cases need script mode and an io challenge."""
    with pytest.raises(ValidationError, match=message):
        challenge(**changes)


def test_io_expectations_cannot_expect_warnings() -> None:
    """A case has no warnings to compare: refused at load."""
    expectation = {**CHALLENGE["expectation"], "warnings": [{"category": "UserWarning"}]}
    with pytest.raises(ValidationError, match="io expectations cannot expect warnings"):
        challenge(expectation=expectation)


def test_case_rules() -> None:
    """Regexes compile, names are unique, points are positive, at least one case."""
    with pytest.raises(ValidationError, match="invalid regex"):
        IoCase(stdout="(", match="regex")
    with pytest.raises(ValidationError, match="case names must be unique"):
        IoExpectation(cases=(IoCase(name="a", stdout=""), IoCase(name="a", stdout="")))
    with pytest.raises(ValidationError, match="greater than 0"):
        IoCase(stdout="", points=0)
    with pytest.raises(ValidationError, match="at least 1 item"):
        IoExpectation(cases=())


def test_tables_and_flakiness_see_each_case() -> None:
    """matrix shows each case's first line (or status); validate compares cases between runs."""
    timed_out = CaseRun(status=RunStatus.TIME_LIMIT_EXCEEDED, timed_out=True)
    obs = completed("env", cases=(case("5\nmore\n"), timed_out))
    assert summarize(obs) == "2 cases: 5 | time_limit_exceeded"
    other = completed("env", cases=(case("6\n"), timed_out))
    assert first_difference([obs, obs]) is None
    difference = first_difference([obs, other])
    assert difference is not None and difference.startswith("run 1 and run 2 of 2 differ in cases")
