"""What a failed check shows an instructor: the observation, one fact per line."""

from __future__ import annotations

from grader.domain import (
    CapturedStream,
    CollectionError,
    ExceptionInfo,
    RunMode,
    RunStatus,
    StateStatus,
    StateValue,
    SyntaxErrorInfo,
    TestOutcome,
    TestResult,
)
from grader.domain.challenge import Expectation, Kind, OutputExpectation
from grader.domain.compare import compare
from grader.domain.observed import MAX_LINES, describe, failure_detail
from grader.sandbox.testing import completed


def test_describe_names_tests_collection_errors_and_pytest_summary() -> None:
    """Test outcomes (with the phase of an error), collection errors and the summary."""
    obs = completed(
        "env",
        RunMode.PYTEST,
        exit_code=1,
        tests=[
            TestResult(nodeid="test_a.py::test_one", outcome=TestOutcome.PASSED),
            TestResult(
                nodeid="test_a.py::test_two[1]",
                outcome=TestOutcome.ERROR,
                when="setup",
                message="fixture 'db' not found",
            ),
        ],
        collection_errors=[
            CollectionError(
                nodeid="test_b.py",
                message="E   ImportError",
                exception=ExceptionInfo(type="ImportError", message="no module named x"),
            )
        ],
        pytest_summary={"passed": 1, "error": 2},
    )
    assert describe(obs) == (
        "collection error in test_b.py: ImportError: no module named x\n"
        "test_a.py::test_one: passed\n"
        "test_a.py::test_two[1]: error at setup: fixture 'db' not found\n"
        "pytest: 1 passed, 2 errors\n"
        "exit code 1\n"
        "printed nothing"
    )


def test_describe_names_state_values_and_what_could_not_be_read() -> None:
    """State values as JSON; a missing or unreadable one with its status and reason."""
    obs = completed(
        "env",
        state={
            "counter": StateValue(status=StateStatus.OK, value={"a": [1, True]}),
            "gone": StateValue(status=StateStatus.MISSING),
            "sock": StateValue(
                status=StateStatus.UNSERIALIZABLE, type="socket", reason="not plain data"
            ),
        },
    )
    assert describe(obs) == (
        'counter = {"a": [1, true]}\n'
        "gone: missing\n"
        "sock: unserializable (not plain data)\n"
        "printed nothing"
    )


def test_describe_names_a_syntax_error_and_a_run_level_status() -> None:
    """A compile error with its file and line; a run that did not complete, with why."""
    syntax = completed(
        "env",
        status=RunStatus.SYNTAX_ERROR,
        syntax_error=SyntaxErrorInfo(
            type="IndentationError", message="unexpected indent", file="main.py", line=4
        ),
    )
    assert describe(syntax) == (
        "status: syntax_error\nIndentationError: unexpected indent (main.py, line 4)\n"
        "printed nothing"
    )
    slow = completed("env", status=RunStatus.TIME_LIMIT_EXCEEDED, error="wall limit 5.0 s")
    assert describe(slow).splitlines()[0] == "status: time_limit_exceeded (wall limit 5.0 s)"


def test_a_long_output_diff_is_cut_saying_how_much_was_left_out() -> None:
    """A diff longer than MAX_LINES ends with the number of lines not shown."""
    expected = "".join(f"{n}\n" for n in range(100))
    actual = "".join(f"x{n}\n" for n in range(100))
    rule = Expectation(output=OutputExpectation(stdout=expected))
    obs = completed("env", stdout=CapturedStream(text=actual, bytes=len(actual)))
    lines = failure_detail(rule, compare(Kind.OUTPUT, rule, obs)).splitlines()
    assert len(lines) == MAX_LINES + 1
    assert lines[:4] == ["--- expected", "+++ actual", "@@ -1,100 +1,100 @@", "-0"]
    assert lines[-1] == "... (163 more lines)"  # 3 header lines + 200 - 40 shown
