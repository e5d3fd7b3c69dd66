"""Proving keys by execution, with a scripted fake sandbox (the real path is integration)."""

from __future__ import annotations

from collections.abc import Callable

from grader.domain import (
    CapturedStream,
    Limits,
    Observation,
    RunMode,
    RunRequest,
    RunStatus,
    StateStatus,
    StateValue,
    SyntaxErrorInfo,
)
from grader.domain.challenge import Challenge
from grader.domain.grading import request_for
from grader.domain.validation import validate
from grader.sandbox.testing import FakeSandbox, completed

observed = completed


def challenge(**fields: object) -> Challenge:
    return Challenge.model_validate(
        {"id": "c", "set": "s", "title": "t", "prompt": "p", "environment": "env-a", **fields}
    )


OUTPUT = challenge(
    kind="output",
    code="print(2)",
    answer="A",
    options=[{"label": "A", "text": "2"}, {"label": "B", "text": "3"}],
    expectation={"output": {"stdout": "2\n"}},
)


def printing(text: str) -> Callable[[str, RunRequest], Observation]:
    return lambda env, req: observed(env, stdout=CapturedStream(text=text, bytes=len(text)))


def test_output_key_proven() -> None:
    """The code prints the expected output and only the keyed option's text equals it."""
    report = validate(OUTPUT, FakeSandbox(printing("2\n")), Limits())
    assert report.ok
    assert [c.name for c in report.checks] == [
        "code meets the expectation",
        "keyed text equals the observation",
    ]


def test_output_key_refuted_when_the_code_prints_something_else() -> None:
    """If the code prints what option B says, both checks fail and say why."""
    report = validate(OUTPUT, FakeSandbox(printing("3\n")), Limits())
    assert not report.ok
    assert report.checks[1].detail == "options equal to the observation: B; key: A"


SYNTAX = challenge(
    kind="syntax",
    mode="pytest",
    answer="B",
    options=[
        {"label": "A", "code": "ok = 1"},
        {"label": "B", "code": "bad ="},
        {"label": "C", "code": "also bad ="},
    ],
    expectation={"syntax": {"line": 1}},
)


def compile_errors_for(*broken: str) -> Callable[[str, RunRequest], Observation]:
    def answer(env: str, req: RunRequest) -> Observation:
        code = req.files[req.entry]
        if code in broken:
            return observed(
                env,
                status=RunStatus.SYNTAX_ERROR,
                syntax_error=SyntaxErrorInfo(
                    type="SyntaxError", message="invalid syntax", file=req.entry, line=1
                ),
            )
        return observed(env)

    return answer


def test_exactly_the_keyed_option_produces_the_syntax_error() -> None:
    """Each code option runs; only the keyed one may fail to compile."""
    sandbox = FakeSandbox(compile_errors_for("bad ="))
    report = validate(SYNTAX, sandbox, Limits())
    assert report.ok
    assert len(sandbox.runs) == 3
    assert all(req.mode is RunMode.PYTEST for _, req, _ in sandbox.runs)


def test_two_options_producing_it_refute_the_key() -> None:
    """When another option also fails to compile, the key is not proven."""
    report = validate(SYNTAX, FakeSandbox(compile_errors_for("bad =", "also bad =")), Limits())
    assert not report.ok
    assert report.checks[0].detail == "options producing it: B, C; key: B"


STATE = challenge(
    kind="state",
    code="counter = 3",
    answer="B",
    options=[{"label": "A", "text": "0"}, {"label": "B", "text": "3"}],
    expectation={"state": {"values": {"counter": 3}}},
    environments={"env-b": {"expectation": {"state": {"values": {"counter": 0}}}}},
)


def test_state_key_and_per_environment_expectations() -> None:
    """State keys are proven in the main environment; overrides are checked in theirs."""

    def answer(env: str, req: RunRequest) -> Observation:
        value = 3 if env == "env-a" else 0
        return observed(env, state={"counter": StateValue(status=StateStatus.OK, value=value)})

    sandbox = FakeSandbox(answer)
    report = validate(STATE, sandbox, Limits())
    assert report.ok
    assert [env for env, _, _ in sandbox.runs] == ["env-a", "env-b"]
    assert all(req.state == ("counter",) for _, req, _ in sandbox.runs)


def test_conceptual_needs_no_run() -> None:
    """A conceptual challenge is checked without running anything."""
    concept = challenge(
        kind="conceptual",
        answer="A",
        options=[{"label": "A", "text": "x"}, {"label": "B", "text": "y"}],
    )
    sandbox = FakeSandbox(printing(""))
    assert validate(concept, sandbox, Limits()).ok
    assert sandbox.runs == []


def test_tests_request_lays_out_solution_and_hidden_tests() -> None:
    """A tests challenge writes the learner's code as the solution file next to hidden tests."""
    tests = challenge(
        kind="tests",
        mode="pytest",
        code="def f(): return 1",
        expectation={"tests": {"code": "from solution import f\ndef test_f(): assert f() == 1\n"}},
    )
    request = request_for(tests, "def f(): return 2", tests.expectation)
    assert request.entry == "test_hidden.py"
    assert request.files["solution.py"] == "def f(): return 2"
    assert set(request.files) == {"solution.py", "test_hidden.py"}


def test_syntax_challenge_with_explanation_options_proves_the_premise() -> None:
    """Text options of a syntax challenge are explanations: the premise is proven by running."""
    explained = challenge(
        kind="syntax",
        code="bad =",
        answer="A",
        options=[
            {"label": "A", "text": "a missing value"},
            {"label": "B", "text": "nothing is wrong"},
        ],
        expectation={"syntax": {"line": 1}},
    )
    report = validate(explained, FakeSandbox(compile_errors_for("bad =")), Limits())
    assert report.ok
    assert report.checks[-1].detail.startswith("options are explanations")
