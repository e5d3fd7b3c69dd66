"""Grading hidden tests: the ``error`` verdict, variations, task numbers, output, several files."""

from __future__ import annotations

from typing import Any

import pytest

from grader.domain import (
    ChildReportStatus,
    CollectionError,
    EnvironmentRef,
    ExceptionInfo,
    Observation,
    RunMode,
    RunStatus,
    SyntaxErrorInfo,
    TestOutcome,
    TestResult,
)
from grader.domain.challenge import Expectation, Kind, OutputExpectation
from grader.domain.compare import compare, untestable
from grader.domain.hidden import TestsExpectation
from grader.domain.observation import SubtestResult
from grader.domain.text import OUTPUT_TRUNCATED, TEST_OUTPUT_CHARS
from grader.domain.verdict import VerdictStatus

ENV = EnvironmentRef(name="env", image_id="sha256:x")
HIDDEN = """
import pytest

from lasagna import bake


@pytest.mark.parametrize("x", [1, 2])
def test_cases(x): pass


class TestLasagna:
    def test_bake(self): pass
"""
RULE = Expectation(
    tests=TestsExpectation(file="lasagna_test.py", code=HIDDEN, solution_file="lasagna.py")
)


def observed(*tests: TestResult, **fields: Any) -> Observation:
    base: dict[str, Any] = {
        "status": RunStatus.COMPLETED,
        "environment": ENV,
        "mode": RunMode.PYTEST,
        "exit_code": 0,
        "child_report": ChildReportStatus.OK,
        "tests": tests,
    }
    return Observation(**{**base, **fields})


def result(name: str, outcome: TestOutcome = TestOutcome.PASSED, **fields: Any) -> TestResult:
    return TestResult(nodeid=f"lasagna_test.py::{name}", outcome=outcome, **fields)


def variation(name: str, outcome: TestOutcome, **fields: Any) -> SubtestResult:
    return SubtestResult(name=name, outcome=outcome, **fields)


IMPORT_ERROR = ExceptionInfo(
    type="ImportError",
    message="cannot import name 'bake' from 'lasagna' (/sandbox/lasagna.py)",
    file="lasagna_test.py",
    line=4,
)


def test_a_syntax_error_in_the_solution_is_an_error_with_the_whole_message() -> None:
    """Code that does not compile could not be tested: ``error``, no tests, file and line."""
    syntax = SyntaxErrorInfo(type="SyntaxError", message="expected ':'", file="lasagna.py", line=3)
    verdict = compare(
        Kind.TESTS, RULE, observed(status=RunStatus.SYNTAX_ERROR, syntax_error=syntax)
    )
    assert verdict.status is VerdictStatus.ERROR
    assert verdict.reason == "SyntaxError: expected ':' (lasagna.py, line 3)"
    assert (verdict.tests, verdict.score, verdict.max_points) == ((), 0.0, 2.0)


def test_a_collection_error_is_an_error_with_the_exception_and_its_place() -> None:
    """An import that fails: its first line, the sandbox path dropped, and where it was."""
    error = CollectionError(
        nodeid="lasagna_test.py",
        message="ImportError while importing test module ...\nE   ImportError: last line",
        exception=IMPORT_ERROR,
    )
    verdict = compare(Kind.TESTS, RULE, observed(collection_errors=(error,), exit_code=2))
    assert verdict.status is VerdictStatus.ERROR
    assert verdict.reason == (
        "ImportError: cannot import name 'bake' from 'lasagna' (lasagna.py) "
        "(lasagna_test.py, line 4)"
    )
    assert verdict.tests == ()


def test_a_collection_error_without_its_exception_keeps_the_first_line() -> None:
    """Without the exception, the report's first line is kept (not its last)."""
    error = CollectionError(nodeid="x", message="\nERROR collecting x\nE   boom\n")
    assert untestable(observed(collection_errors=(error,))) == "ERROR collecting x"


def test_an_exception_out_of_pytest_before_any_test_is_an_error() -> None:
    """A session that raised before reporting a test (SystemExit at import) is an error."""
    exc = ExceptionInfo(type="SystemExit", message="3\nmore", file="lasagna.py", line=1)
    assert untestable(observed(exception=exc)) == "SystemExit: 3 (lasagna.py, line 1)"
    assert untestable(observed(result("test_cases[1]"), exception=exc)) is None


def test_other_kinds_still_fail_on_a_syntax_error() -> None:
    """``error`` belongs to hidden tests; an output challenge fails as before."""
    syntax = SyntaxErrorInfo(type="SyntaxError", message="bad", file="main.py", line=1)
    verdict = compare(
        Kind.OUTPUT,
        Expectation(output=OutputExpectation(stdout="x")),
        observed(status=RunStatus.SYNTAX_ERROR, syntax_error=syntax, mode=RunMode.SCRIPT),
    )
    assert verdict.status is VerdictStatus.FAILED


def test_a_claimed_pass_with_a_failed_variation_fails_and_earns_nothing() -> None:
    """Whatever the process claimed, a test with a failed variation did not pass."""
    subtests = (
        variation("(i=0)", TestOutcome.PASSED, stdout="zero\n"),
        variation("(i=1)", TestOutcome.FAILED, message="assert 1 == 0"),
    )
    verdict = compare(
        Kind.TESTS,
        RULE,
        observed(
            result("test_cases[1]"),
            result("test_cases[2]"),
            result("TestLasagna::test_bake", subtests=subtests),
        ),
    )
    assert verdict.status is VerdictStatus.FAILED
    bake = verdict.tests[1]
    assert (bake.name, bake.status, bake.points) == ("TestLasagna::test_bake", "failed", 0)
    assert bake.message == "contains 1 failed subtest"
    assert [(s.name, s.status, s.message, s.output) for s in bake.subtests] == [
        ("(i=0)", "passed", None, "zero\n"),
        ("(i=1)", "failed", "assert 1 == 0", ""),
    ]
    assert verdict.points == 1.0


def test_variations_of_parametrized_cases_are_named_with_their_case() -> None:
    """Cases fold into one test; their variations keep the case's id in front."""
    verdict = compare(
        Kind.TESTS,
        RULE,
        observed(
            result("test_cases[1]", subtests=(variation("(j=0)", TestOutcome.PASSED),)),
            result("test_cases[2]", subtests=(variation("(j=0)", TestOutcome.PASSED),)),
            result("TestLasagna::test_bake"),
        ),
    )
    assert verdict.passed
    assert [s.name for s in verdict.tests[0].subtests] == ["[1] (j=0)", "[2] (j=0)"]


def test_task_numbers_and_capped_output_reach_the_verdict() -> None:
    """Each test's task number; its output cut at the documented cap with the marker."""
    long = "x" * (TEST_OUTPUT_CHARS + 1)
    verdict = compare(
        Kind.TESTS,
        RULE,
        observed(
            result("test_cases[1]", task_id=2, stdout="short\n"),
            result("test_cases[2]", task_id=2),
            result("TestLasagna::test_bake", TestOutcome.FAILED, task_id=1, stdout=long),
            exit_code=1,
        ),
    )
    cases, bake = verdict.tests
    assert (cases.task_id, cases.output) == (2, "short\n")
    assert bake.task_id == 1
    assert bake.output == "x" * TEST_OUTPUT_CHARS + OUTPUT_TRUNCATED
    assert OUTPUT_TRUNCATED == "\n[output truncated to 500 characters]"


@pytest.mark.parametrize("outcome", [TestOutcome.FAILED, TestOutcome.ERROR])
def test_a_failed_case_names_the_folded_test_failed(outcome: TestOutcome) -> None:
    """One failing case fails the whole parametrized test, with that case's message."""
    verdict = compare(
        Kind.TESTS,
        RULE,
        observed(
            result("test_cases[1]"),
            result("test_cases[2]", outcome, message="assert 2 == 1"),
            result("TestLasagna::test_bake"),
            exit_code=1,
        ),
    )
    assert (verdict.tests[0].status, verdict.tests[0].message) == (outcome.value, "assert 2 == 1")
    assert verdict.reason == "1 of 2 tests did not pass: test_cases"


def test_tests_of_several_files_are_matched_by_file() -> None:
    """Two files' tests of one name are told apart; points reach the right one."""
    rule = Expectation(
        tests=TestsExpectation(
            files={
                "test_a.py": "def test_same(): pass\n",
                "b_test.py": "def test_same(): pass\n",
            },
            points={"b_test.py::test_same": 3},
        )
    )
    verdict = compare(
        Kind.TESTS,
        rule,
        observed(
            TestResult(nodeid="test_a.py::test_same", outcome=TestOutcome.FAILED),
            TestResult(nodeid="b_test.py::test_same", outcome=TestOutcome.PASSED),
            exit_code=1,
        ),
    )
    assert [(t.name, t.status, t.points) for t in verdict.tests] == [
        ("test_a.py::test_same", "failed", 0),
        ("b_test.py::test_same", "passed", 3),
    ]
    assert (verdict.points, verdict.max_points) == (3, 4)
