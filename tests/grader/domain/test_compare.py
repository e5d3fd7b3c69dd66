"""Every comparison mode, on hand-built observations (pure functions, no Docker)."""

from __future__ import annotations

from typing import Any

import pytest

from grader.domain import (
    CapturedStream,
    ChildReportStatus,
    EnvironmentRef,
    ExceptionInfo,
    Observation,
    RunMode,
    RunStatus,
    StateStatus,
    StateValue,
    SyntaxErrorInfo,
    TestOutcome,
    TestResult,
)
from grader.domain.challenge import (
    Challenge,
    ExceptionExpectation,
    Expectation,
    Kind,
    OutputExpectation,
    StateExpectation,
    SyntaxExpectation,
    TextMatch,
)
from grader.domain.compare import compare, grade_choice
from grader.domain.hidden import TestsExpectation
from grader.domain.text import json_equal
from grader.domain.verdict import VerdictStatus

ENV = EnvironmentRef(name="env", image_id="sha256:x")


def obs(**fields: Any) -> Observation:
    base: dict[str, Any] = {
        "status": RunStatus.COMPLETED,
        "environment": ENV,
        "mode": RunMode.SCRIPT,
        "exit_code": 0,
        "child_report": ChildReportStatus.OK,
    }
    return Observation(**{**base, **fields})


def out(text: str) -> Observation:
    return obs(stdout=CapturedStream(text=text, bytes=len(text)))


def output(match: str, stdout: str) -> Expectation:
    return Expectation(output=OutputExpectation(match=match, stdout=stdout))


@pytest.mark.parametrize(
    ("match", "expected", "actual", "ok"),
    [
        ("exact", "a\n", "a\n", True),
        ("exact", "a\n", "a", False),
        ("normalized", "a  b\n\n", "a b", True),
        ("normalized", "a b", "ab", False),
        ("regex", r"\d+ items\n", "42 items\n", True),
        ("regex", r"\d+", "42 items", False),
        ("literal", "{'message': 'Hello, async!'}", '{"message": "Hello, async!"}\n', True),
        ("literal", "{'a': 1}", "{'a': True}", False),
        ("literal", "[1, 2]", "not a literal", False),
    ],
)
def test_output_modes(match: str, expected: str, actual: str, ok: bool) -> None:
    """exact, normalized, regex and literal stdout comparison."""
    verdict = compare(Kind.OUTPUT, output(match, expected), out(actual))
    assert verdict.passed is ok


def test_output_failure_carries_a_diff() -> None:
    """A failed output comparison explains itself with a unified diff."""
    verdict = compare(Kind.OUTPUT, output("exact", "one\ntwo\n"), out("one\nthree\n"))
    assert verdict.status is VerdictStatus.FAILED
    assert verdict.reason == "output does not match (exact)"
    assert verdict.diff is not None and "-two" in verdict.diff and "+three" in verdict.diff


def exc_exp(**fields: Any) -> Expectation:
    return Expectation(exception=ExceptionExpectation(**fields))


RUNTIME = ExceptionInfo(type="RuntimeError", message="This event loop is already running", line=12)


@pytest.mark.parametrize(
    ("expectation", "ok"),
    [
        (exc_exp(type="RuntimeError"), True),
        (exc_exp(type="RuntimeError", message=TextMatch(equals=RUNTIME.message)), True),
        (exc_exp(type="RuntimeError", message=TextMatch(contains="already")), True),
        (exc_exp(type="RuntimeError", message=TextMatch(regex=r"loop is \w+ running")), True),
        (exc_exp(type="RuntimeError", message=TextMatch(equals="other")), False),
        (exc_exp(type="RuntimeError", line=12), True),
        (exc_exp(type="RuntimeError", line=11), False),
        (exc_exp(type="TypeError"), False),
    ],
)
def test_exception_modes(expectation: Expectation, ok: bool) -> None:
    """Type, message (equals, contains, regex) and line of the raised exception."""
    verdict = compare(Kind.EXCEPTION, expectation, obs(exception=RUNTIME, exit_code=1))
    assert verdict.passed is ok


def test_qualified_exception_type_matches_its_short_name() -> None:
    """An expected 'ConnectError' matches the observed 'httpx.ConnectError'."""
    info = ExceptionInfo(type="httpx.ConnectError", message="boom")
    assert compare(
        Kind.EXCEPTION, exc_exp(type="ConnectError"), obs(exception=info, exit_code=1)
    ).passed


def test_exception_from_the_first_failing_test_in_pytest_mode() -> None:
    """In pytest mode the exception is the first failing test's."""
    test = TestResult(nodeid="t.py::test_a", outcome=TestOutcome.FAILED, exception=RUNTIME)
    observation = obs(mode=RunMode.PYTEST, tests=(test,), exit_code=1)
    assert compare(Kind.EXCEPTION, exc_exp(type="RuntimeError"), observation).passed


def test_claimed_exception_with_exit_zero_is_not_trusted() -> None:
    """A script report claiming an exception while the process exited 0 fails."""
    verdict = compare(Kind.EXCEPTION, exc_exp(type="RuntimeError"), obs(exception=RUNTIME))
    assert verdict.reason == "the report claims an exception but the process exited 0"


def test_missing_child_report_fails_exception_kind() -> None:
    """No child report means no exception can be graded."""
    observation = obs(child_report=ChildReportStatus.MISSING, exit_code=0)
    verdict = compare(Kind.EXCEPTION, exc_exp(type="RuntimeError"), observation)
    assert verdict.status is VerdictStatus.FAILED
    assert verdict.reason.startswith("no exception report (missing)")


SYNTAX = SyntaxErrorInfo(type="SyntaxError", message="expected ':'", file="t.py", line=13)


@pytest.mark.parametrize(
    ("rule", "ok"),
    [
        (SyntaxExpectation(), True),
        (SyntaxExpectation(line=13, message=TextMatch(equals="expected ':'")), True),
        (SyntaxExpectation(line=12), False),
        (SyntaxExpectation(type="IndentationError"), False),
        (SyntaxExpectation(message=TextMatch(contains="invalid")), False),
    ],
)
def test_syntax_modes(rule: SyntaxExpectation, ok: bool) -> None:
    """SyntaxError family, line and message."""
    observation = obs(status=RunStatus.SYNTAX_ERROR, syntax_error=SYNTAX, exit_code=None)
    assert compare(Kind.SYNTAX, Expectation(syntax=rule), observation).passed is ok


def test_code_that_compiles_fails_a_syntax_expectation() -> None:
    """Code that compiled does not satisfy a syntax expectation."""
    verdict = compare(Kind.SYNTAX, Expectation(syntax=SyntaxExpectation()), out(""))
    assert verdict.reason == "expected a SyntaxError, but the code compiled"


def test_syntax_error_fails_other_kinds_with_its_location() -> None:
    """A learner's syntax error fails an output challenge and says where."""
    observation = obs(status=RunStatus.SYNTAX_ERROR, syntax_error=SYNTAX)
    verdict = compare(Kind.OUTPUT, output("exact", "x"), observation)
    assert verdict.reason == "SyntaxError: expected ':' at line 13"


def state_obs(**values: StateValue) -> Observation:
    return obs(state=values)


def ok(value: Any) -> StateValue:
    return StateValue(status=StateStatus.OK, value=value)


@pytest.mark.parametrize(
    ("observed", "expected", "passes"),
    [
        (ok(3), 3, True),
        (ok(3.0), 3, True),
        (ok(True), 1, False),
        (ok([1, {"a": None}]), [1, {"a": None}], True),
        (ok({"a": 1}), {"a": 1, "b": 2}, False),
        (StateValue(status=StateStatus.UNSERIALIZABLE, reason="x", type="Liar"), 3, False),
        (StateValue(status=StateStatus.MISSING), 3, False),
    ],
)
def test_state_is_compared_as_json(observed: StateValue, expected: Any, passes: bool) -> None:
    """State values compare as JSON: 3 == 3.0, True != 1, unserializable never equal."""
    rule = Expectation(state=StateExpectation(values={"counter": expected}))
    assert compare(Kind.STATE, rule, state_obs(counter=observed)).passed is passes


def test_state_failure_reason() -> None:
    """A wrong value is reported with both values."""
    rule = Expectation(state=StateExpectation(values={"counter": 3}))
    verdict = compare(Kind.STATE, rule, state_obs(counter=ok(0)))
    assert verdict.reason == "counter is 0, expected 3"


HIDDEN = """
def test_one(): pass
async def test_two(): pass
def helper(): pass
def test_three(): pass
"""


def hidden_obs(outcomes: dict[str, TestOutcome], exit_code: int = 0) -> Observation:
    tests = tuple(
        TestResult(nodeid=f"test_hidden.py::{name}", outcome=outcome)
        for name, outcome in outcomes.items()
    )
    return obs(mode=RunMode.PYTEST, tests=tests, exit_code=exit_code)


RULE = Expectation(tests=TestsExpectation(code=HIDDEN, points={"test_three": 2}))


def test_all_hidden_tests_pass() -> None:
    """Every hidden test passing with exit 0 scores full points."""
    verdict = compare(
        Kind.TESTS,
        RULE,
        hidden_obs(dict.fromkeys(("test_one", "test_two", "test_three"), TestOutcome.PASSED)),
    )
    assert verdict.passed
    assert (verdict.points, verdict.max_points, verdict.score) == (4, 4, 1.0)


def test_partial_credit_by_points() -> None:
    """Points count per test; a failure and a missing test earn nothing."""
    verdict = compare(
        Kind.TESTS,
        RULE,
        hidden_obs({"test_one": TestOutcome.FAILED, "test_three": TestOutcome.PASSED}, exit_code=1),
    )
    assert verdict.status is VerdictStatus.FAILED
    assert (verdict.points, verdict.max_points, verdict.score) == (2, 4, 0.5)
    assert [t.status for t in verdict.tests] == ["failed", "not_run", "passed"]
    assert verdict.reason == "2 of 3 tests did not pass: test_one, test_two"


def test_claimed_passes_contradicted_by_exit_status_fail() -> None:
    """All tests claimed passed but the process exited non-zero: nothing is awarded."""
    verdict = compare(
        Kind.TESTS,
        RULE,
        hidden_obs(
            dict.fromkeys(("test_one", "test_two", "test_three"), TestOutcome.PASSED), exit_code=1
        ),
    )
    assert verdict.status is VerdictStatus.FAILED
    assert verdict.points == 0
    assert verdict.reason == "the test report contradicts the process exit status"


def test_tests_from_other_files_do_not_count() -> None:
    """A learner's own test named like a hidden one, in another file, is ignored."""
    tests = (TestResult(nodeid="solution.py::test_one", outcome=TestOutcome.PASSED),)
    verdict = compare(Kind.TESTS, RULE, obs(mode=RunMode.PYTEST, tests=tests))
    assert verdict.points == 0


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (RunStatus.TIME_LIMIT_EXCEEDED, VerdictStatus.TIME_LIMIT_EXCEEDED),
        (RunStatus.MEMORY_LIMIT_EXCEEDED, VerdictStatus.MEMORY_LIMIT_EXCEEDED),
        (RunStatus.OUTPUT_LIMIT_EXCEEDED, VerdictStatus.OUTPUT_LIMIT_EXCEEDED),
        (RunStatus.SANDBOX_ERROR, VerdictStatus.SANDBOX_ERROR),
    ],
)
def test_run_level_statuses_win(status: RunStatus, verdict: VerdictStatus) -> None:
    """A run that hit a limit gets that run-level verdict, whatever its output."""
    assert compare(Kind.OUTPUT, output("exact", ""), obs(status=status)).status is verdict


def test_choices_against_the_key() -> None:
    """A choice passes only when it is the key; an unknown label is rejected."""
    challenge = Challenge.model_validate(
        {
            "id": "c",
            "set": "s",
            "title": "t",
            "kind": "conceptual",
            "prompt": "p",
            "options": [{"label": "A", "text": "a"}, {"label": "B", "text": "b"}],
            "answer": "B",
        }
    )
    assert grade_choice(challenge, "B").passed
    assert grade_choice(challenge, "A").status is VerdictStatus.FAILED
    rejected = grade_choice(challenge, "Z")
    assert (rejected.status, rejected.reason) == (
        VerdictStatus.REJECTED,
        "choice 'Z' is not one of A, B",
    )


def test_json_equal_is_strict_about_bools() -> None:
    """True is not 1, 1 is 1.0, nested structures compare element-wise."""
    assert not json_equal(True, 1)
    assert json_equal(1, 1.0)
    assert json_equal({"a": [1, 2]}, {"a": [1, 2]})
    assert not json_equal([1, 2], [2, 1])


PARAMETRIZED = """
import pytest

@pytest.mark.parametrize("x", [1, 2])
def test_double(x): pass

class TestGroup:
    def test_in_class(self): pass
"""


def test_parametrized_and_class_tests_are_counted() -> None:
    """Parametrized cases fold into their test; class tests count as Class::method."""
    rule = Expectation(tests=TestsExpectation(code=PARAMETRIZED))
    cases = {
        "test_double[1]": TestOutcome.PASSED,
        "test_double[2]": TestOutcome.PASSED,
        "TestGroup::test_in_class": TestOutcome.PASSED,
    }
    assert compare(Kind.TESTS, rule, hidden_obs(cases)).passed
    cases["test_double[2]"] = TestOutcome.FAILED
    verdict = compare(Kind.TESTS, rule, hidden_obs(cases, exit_code=1))
    assert [(t.name, t.status) for t in verdict.tests] == [
        ("test_double", "failed"),
        ("TestGroup::test_in_class", "passed"),
    ]


def test_points_must_name_real_tests() -> None:
    """A points entry for a test that does not exist is an error, not a silent 1 point."""
    with pytest.raises(ValueError, match=r"points name unknown tests \['test_tree'\]"):
        TestsExpectation(code=HIDDEN, points={"test_tree": 2})


@pytest.mark.parametrize(
    "expectation",
    [
        Expectation.model_construct(
            output=OutputExpectation.model_construct(match="regex", stdout="1(")
        ),
        Expectation.model_construct(
            exception=ExceptionExpectation.model_construct(
                type="ValueError", message=TextMatch.model_construct(regex="[a-")
            )
        ),
    ],
)
def test_a_regex_that_slipped_past_the_loader_ends_in_a_verdict(expectation: Expectation) -> None:
    """compare never raises on a bad regex: a sandbox_error verdict, never the learner's fault."""
    observed = obs(
        stdout=CapturedStream(text="1\n", bytes=2),
        exit_code=1,
        exception=ExceptionInfo(type="ValueError", message="bad"),
    )
    kind = Kind.OUTPUT if expectation.output is not None else Kind.EXCEPTION
    verdict = compare(kind, expectation, observed)
    assert verdict.status is VerdictStatus.SANDBOX_ERROR
    assert verdict.reason.startswith("the challenge's expectation has an invalid regex: ")
    assert verdict.observation == observed
