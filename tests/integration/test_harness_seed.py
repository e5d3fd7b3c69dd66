"""The harness reproduces the seed quiz's truths in the pinned environments (real Docker)."""

from __future__ import annotations

import pytest

from grader.domain import ChildReportStatus, RunStatus, StateStatus, TestOutcome
from tests.conftest import NEW_ENV, OLD_ENV, Runner

from .seeds import Q1_OUTPUT, Q2_MISSING_COLON, Q3_LOOP, Q4_COUNTER

pytestmark = pytest.mark.docker


def test_q1_prints_the_json_and_passes_under_httpx_027(run: Runner) -> None:
    """Q1: the async test prints the endpoint's JSON and passes with httpx 0.27."""
    obs = run.pytest(Q1_OUTPUT, env=OLD_ENV)
    assert obs.status is RunStatus.COMPLETED
    assert obs.stdout.text == "{'message': 'Hello, async!'}\n"
    assert [(t.nodeid, t.outcome) for t in obs.tests] == [
        ("test_snippet.py::test_hello", TestOutcome.PASSED)
    ]
    assert obs.tests[0].stdout == "{'message': 'Hello, async!'}\n"
    assert obs.exit_code == 0
    assert obs.environment.name == OLD_ENV
    assert obs.environment.image_id.startswith("sha256:")


def test_q1_fails_with_type_error_under_httpx_028(run: Runner) -> None:
    """Q1 under httpx 0.28: AsyncClient(app=...) was removed, so the test fails with TypeError."""
    obs = run.pytest(Q1_OUTPUT, env=NEW_ENV)
    assert obs.status is RunStatus.COMPLETED
    assert obs.stdout.text == ""
    (test,) = obs.tests
    assert test.outcome is TestOutcome.FAILED
    assert test.exception is not None
    assert test.exception.type == "TypeError"
    assert "unexpected keyword argument 'app'" in test.exception.message
    assert test.exception.line == 14
    assert obs.exit_code == 1


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_q2_missing_colon_is_a_syntax_error_at_its_line(run: Runner, env: str) -> None:
    """Q2: the option missing its colon is a SyntaxError "expected ':'" and nothing runs."""
    obs = run.pytest(Q2_MISSING_COLON, env=env)
    assert obs.status is RunStatus.SYNTAX_ERROR
    assert obs.syntax_error is not None
    assert obs.syntax_error.type == "SyntaxError"
    assert obs.syntax_error.message == "expected ':'"
    assert obs.syntax_error.line == 13
    assert obs.syntax_error.file == "test_snippet.py"
    assert obs.syntax_error.text.strip().startswith("async with httpx.AsyncClient")
    assert obs.tests == ()


def test_q3_run_until_complete_inside_the_loop_raises_runtime_error(run: Runner) -> None:
    """Q3: run_until_complete inside a running loop raises 'This event loop is already running'."""
    obs = run.pytest(Q3_LOOP, env=OLD_ENV)
    (test,) = obs.tests
    assert test.outcome is TestOutcome.FAILED
    assert test.exception is not None
    assert test.exception.type == "RuntimeError"
    assert test.exception.message == "This event loop is already running"
    assert test.exception.line == 12


@pytest.mark.parametrize(
    ("env", "expected", "outcome"),
    [
        (OLD_ENV, 3, TestOutcome.PASSED),
        (NEW_ENV, 0, TestOutcome.FAILED),
    ],
)
def test_q4_counter_after_the_test(
    run: Runner, env: str, expected: int, outcome: TestOutcome
) -> None:
    """Q4: three POSTs leave counter == 3 under httpx 0.27; under 0.28 none are sent (0)."""
    obs = run.pytest(Q4_COUNTER, env=env, state=("counter",))
    assert obs.child_report is ChildReportStatus.OK
    assert obs.state["counter"].status is StateStatus.OK
    assert obs.state["counter"].value == expected
    assert obs.tests[0].outcome is outcome


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_assertion_messages_survive_the_silenced_terminal(run: Runner, env: str) -> None:
    """Failed asserts keep pytest's rewritten message in both pytest 8 and 9."""
    obs = run.pytest("def test_x():\n    assert 200 == 201\n", env=env)
    (test,) = obs.tests
    assert test.outcome is TestOutcome.FAILED
    assert test.message == "assert 200 == 201"
    assert obs.stdout.text == ""
