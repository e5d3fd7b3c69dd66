"""Pytest outcome and warning expectations against hand-built observations (no Docker)."""

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
    TestOutcome,
    TestResult,
)
from grader.domain.challenge import (
    ExceptionExpectation,
    Expectation,
    Kind,
    OutcomeExpectation,
    OutputExpectation,
    TestOutcomeRule,
    TextMatch,
    WarningRule,
)
from grader.domain.compare import compare
from grader.domain.observation import WarningInfo

ENV = EnvironmentRef(name="env", image_id="sha256:x")
UNHANDLED = WarningInfo(
    category="pytest.PytestUnhandledCoroutineWarning",
    message="async def functions are not natively supported and have been skipped.",
    when="runtest",
    nodeid="test_snippet.py::test_ping",
)
NEVER_AWAITED = WarningInfo(
    category="RuntimeWarning",
    message="coroutine 'record' was never awaited",
    line=15,
    file="test_snippet.py",
)


def pytest_obs(*tests: TestResult, exit_code: int = 0, **fields: Any) -> Observation:
    base: dict[str, Any] = {
        "status": RunStatus.COMPLETED,
        "environment": ENV,
        "mode": RunMode.PYTEST,
        "exit_code": exit_code,
        "child_report": ChildReportStatus.OK,
        "tests": tests,
    }
    return Observation(**{**base, **fields})


def reported(
    name: str, outcome: TestOutcome, message: str | None = None, when: str = "call"
) -> TestResult:
    return TestResult.model_validate(
        {"nodeid": f"test_snippet.py::{name}", "outcome": outcome, "message": message, "when": when}
    )


SKIPPED = pytest_obs(
    reported("test_ping", TestOutcome.SKIPPED, "async def function and no async plugin installed"),
    pytest_summary={"skipped": 1, "warnings": 1},
    warnings=(UNHANDLED,),
)


def outcome(**fields: Any) -> Expectation:
    return Expectation(outcome=OutcomeExpectation(**fields))


def test_a_skipped_test_with_its_reason_and_the_summary_line() -> None:
    """Outcome, reason and pytest's summary line all match: the verdict says what pytest said."""
    rule = outcome(
        summary="1 skipped, 1 warning",
        tests={
            "test_ping": TestOutcomeRule(
                outcome="skipped", message=TextMatch(contains="no async plugin")
            )
        },
    )
    verdict = compare(Kind.OUTCOME, rule, SKIPPED)
    assert verdict.passed
    assert verdict.reason == "pytest reported 1 skipped, 1 warning"


def test_every_failing_rule_is_named() -> None:
    """A wrong outcome and a wrong summary are both in the reason."""
    rule = outcome(summary="1 passed", tests={"test_ping": TestOutcomeRule(outcome="passed")})
    verdict = compare(Kind.OUTCOME, rule, SKIPPED)
    assert not verdict.passed
    assert verdict.reason == (
        "test_ping skipped: async def function and no async plugin installed; expected passed; "
        "pytest reported '1 skipped, 1 warning', expected '1 passed'"
    )


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (TestOutcomeRule(outcome="error", when="setup"), None),
        (
            TestOutcomeRule(outcome="error", when="teardown"),
            "test_token error at setup, expected at teardown",
        ),
        (TestOutcomeRule(outcome="error", message=TextMatch(regex=r"^Failed: 'test_token'")), None),
        (
            TestOutcomeRule(outcome="error", message=TextMatch(equals="other")),
            "test_token error: \"Failed: 'test_token' requested an async fixture 'token'\" "
            "is not equal to 'other'",
        ),
    ],
)
def test_phase_and_message_of_an_error(rule: TestOutcomeRule, reason: str | None) -> None:
    """An error at setup is told from one at teardown; its message is a text match."""
    message = "Failed: 'test_token' requested an async fixture 'token'"
    observed = pytest_obs(
        reported("test_token", TestOutcome.ERROR, message, when="setup"),
        exit_code=1,
        pytest_summary={"error": 1},
    )
    verdict = compare(Kind.OUTCOME, outcome(tests={"test_token": rule}), observed)
    assert verdict.passed is (reason is None)
    if reason is not None:
        assert verdict.reason == reason


def test_a_rule_for_a_parametrized_test_holds_for_every_case() -> None:
    """``test_x`` covers ``test_x[1]`` and ``test_x[2]``; ``test_x[2]`` only that case."""
    observed = pytest_obs(
        reported("test_x[1]", TestOutcome.XPASSED, "known bug"),
        reported("test_x[2]", TestOutcome.XFAILED, "known bug"),
        pytest_summary={"xpassed": 1, "xfailed": 1},
    )
    every = outcome(tests={"test_x": TestOutcomeRule(outcome="xfailed")})
    one = outcome(tests={"test_x[2]": TestOutcomeRule(outcome="xfailed")})
    assert compare(Kind.OUTCOME, every, observed).reason == (
        "test_x[1] xpassed: known bug; expected xfailed"
    )
    assert compare(Kind.OUTCOME, one, observed).passed


def test_a_test_that_was_not_reported_fails() -> None:
    """Naming a test pytest never reported fails, and says whether collection failed."""
    observed = pytest_obs(
        exit_code=2,
        pytest_summary={"error": 1},
        collection_errors=(CollectionError(nodeid="test_snippet.py", message="boom"),),
    )
    verdict = compare(
        Kind.OUTCOME, outcome(tests={"test_a": TestOutcomeRule(outcome="passed")}), observed
    )
    assert verdict.reason == "test_a was not reported; collection failed"


COLLECTION = pytest_obs(
    exit_code=2,
    pytest_summary={"error": 1},
    collection_errors=(
        CollectionError(
            nodeid="test_snippet.py",
            message="E   ModuleNotFoundError: No module named 'nope'",
            exception=ExceptionInfo(
                type="ModuleNotFoundError", message="No module named 'nope'", line=2
            ),
        ),
    ),
)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            ExceptionExpectation(type="ImportError"),
            "collection error: expected ImportError, "
            "got ModuleNotFoundError: No module named 'nope'",
        ),
        (ExceptionExpectation(type="ModuleNotFoundError", line=2), None),
        (
            ExceptionExpectation(type="ModuleNotFoundError", message=TextMatch(contains="nope")),
            None,
        ),
    ],
)
def test_collection_error_by_type_message_and_line(
    rule: ExceptionExpectation, reason: str | None
) -> None:
    """The error behind a collection failure is matched like an exception (its exact type)."""
    verdict = compare(Kind.OUTCOME, outcome(collection_error=rule, summary="1 error"), COLLECTION)
    assert verdict.passed is (reason is None)
    if reason is not None:
        assert verdict.reason == reason


def test_a_collection_error_expected_but_collection_succeeded() -> None:
    """Expecting a collection error from a file that collects fails with that reason."""
    rule = outcome(collection_error=ExceptionExpectation(type="Failed"))
    verdict = compare(Kind.OUTCOME, rule, SKIPPED)
    assert verdict.reason == "expected a collection error (Failed), but collection succeeded"


@pytest.mark.parametrize(
    ("summary", "exit_code"),
    [({"passed": 1}, 1), ({"failed": 1}, 0), ({"error": 1}, 0), ({}, 3)],
)
def test_a_report_the_exit_status_contradicts_fails(
    summary: dict[str, int], exit_code: int
) -> None:
    """Claimed outcomes must agree with pytest's exit status as the supervisor saw it."""
    rule = outcome(summary="1 passed")
    verdict = compare(Kind.OUTCOME, rule, pytest_obs(exit_code=exit_code, pytest_summary=summary))
    assert not verdict.passed
    assert verdict.reason.startswith("the pytest report (")
    assert verdict.reason.endswith(f") contradicts the exit status {exit_code}")


def test_no_child_report_means_no_outcomes() -> None:
    """Without the snippet's own report there is nothing to grade an outcome on."""
    observed = pytest_obs(exit_code=1, child_report=ChildReportStatus.MISSING)
    verdict = compare(Kind.OUTCOME, outcome(summary="no tests ran"), observed)
    assert verdict.reason.startswith("no pytest report (missing)")


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ((WarningRule(category="PytestUnhandledCoroutineWarning"),), None),
        ((WarningRule(message=TextMatch(regex=r"not natively supported")),), None),
        (
            (WarningRule(category="RuntimeWarning"),),
            "no RuntimeWarning (warnings: pytest.PytestUnhandledCoroutineWarning: "
            "async def functions are not natively supported and have been skipped.)",
        ),
        ((WarningRule(category="RuntimeWarning", absent=True),), None),
        (
            (WarningRule(category="PytestUnhandledCoroutineWarning", absent=True),),
            "unexpected pytest.PytestUnhandledCoroutineWarning: "
            "async def functions are not natively supported and have been skipped.",
        ),
        (
            (WarningRule(absent=True),),
            "unexpected pytest.PytestUnhandledCoroutineWarning: "
            "async def functions are not natively supported and have been skipped.",
        ),
    ],
)
def test_warning_rules_present_and_absent(
    rules: tuple[WarningRule, ...], reason: str | None
) -> None:
    """A warning rule needs a matching warning; an ``absent`` rule needs none."""
    rule = Expectation(outcome=OutcomeExpectation(summary="1 skipped, 1 warning"), warnings=rules)
    verdict = compare(Kind.OUTCOME, rule, SKIPPED)
    assert verdict.passed is (reason is None)
    if reason is not None:
        assert verdict.reason == reason


def test_warnings_join_any_kind_and_match_the_line() -> None:
    """An output expectation with a warning rule needs both; the line is the snippet's."""
    observed = Observation(
        status=RunStatus.COMPLETED,
        environment=ENV,
        mode=RunMode.SCRIPT,
        exit_code=0,
        child_report=ChildReportStatus.OK,
        warnings=(NEVER_AWAITED,),
    )

    def rule(line: int) -> Expectation:
        return Expectation(
            output=OutputExpectation(stdout=""),
            warnings=(WarningRule(category="RuntimeWarning", line=line),),
        )

    assert compare(Kind.OUTPUT, rule(15), observed).passed
    assert compare(Kind.OUTPUT, rule(14), observed).reason == (
        "no RuntimeWarning at line 14 (warnings: RuntimeWarning: "
        "coroutine 'record' was never awaited)"
    )


def test_warnings_are_not_believed_without_a_child_report() -> None:
    """Even an ``absent`` rule fails when the snippet's process sent no report."""
    observed = Observation(
        status=RunStatus.COMPLETED,
        environment=ENV,
        mode=RunMode.SCRIPT,
        exit_code=0,
        child_report=ChildReportStatus.INVALID,
    )
    rule = Expectation(output=OutputExpectation(stdout=""), warnings=(WarningRule(absent=True),))
    assert compare(Kind.OUTPUT, rule, observed).reason == "no warnings report (invalid)"


def test_compare_grades_with_the_kind_of_the_expectation() -> None:
    """An environment's truth of another kind is graded as that kind, whatever kind is passed."""
    raised = ExceptionInfo(type="TypeError", message="unexpected keyword argument 'app'", line=15)
    observed = Observation(
        status=RunStatus.COMPLETED,
        environment=ENV,
        mode=RunMode.SCRIPT,
        exit_code=1,
        child_report=ChildReportStatus.OK,
        exception=raised,
    )
    truth = Expectation(exception=ExceptionExpectation(type="TypeError", line=15))
    verdict = compare(Kind.OUTPUT, truth, observed)
    assert verdict.passed
    assert verdict.reason == "raised TypeError: unexpected keyword argument 'app'"
