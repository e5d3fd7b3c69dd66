"""Proving keys by execution, with a scripted fake sandbox (the real path is integration)."""

from __future__ import annotations

from collections.abc import Callable

from grader.domain import (
    CapturedStream,
    CollectionError,
    ExceptionInfo,
    Kind,
    Limits,
    Observation,
    RunMode,
    RunRequest,
    RunStatus,
    StateStatus,
    StateValue,
    SyntaxErrorInfo,
    TestOutcome,
    TestResult,
)
from grader.domain.challenge import Challenge
from grader.domain.grading import request_for
from grader.domain.observation import WarningInfo
from grader.domain.validation import first_difference, matrix_row, summarize, validate
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
    """Each code option runs (three times by default); only the keyed one may fail to compile."""
    sandbox = FakeSandbox(compile_errors_for("bad ="))
    report = validate(SYNTAX, sandbox, Limits())
    assert report.ok
    assert len(sandbox.runs) == 3 * 3
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
    report = validate(STATE, sandbox, Limits(), runs=1)
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
    """A tests challenge runs the learner's code as the solution module, apart from the tests."""
    tests = challenge(
        kind="tests",
        mode="pytest",
        code="def f(): return 1",
        expectation={"tests": {"code": "from solution import f\ndef test_f(): assert f() == 1\n"}},
    )
    request = request_for(tests, "def f(): return 2", tests.expectation)
    assert request.entry == "test_hidden.py"
    assert set(request.files) == {"test_hidden.py"}
    assert request.learner is not None
    assert request.learner.files == {"solution.py": "def f(): return 2"}
    assert request.learner.modules == ("solution",)


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


def flaky_printing(*texts: str) -> Callable[[str, RunRequest], Observation]:
    """Answers each run with the next text, in turn."""
    calls = iter(texts * 10)

    def answer(env: str, req: RunRequest) -> Observation:
        return printing(next(calls))(env, req)

    return answer


def test_a_challenge_whose_output_differs_between_runs_is_refused() -> None:
    """Green in two runs, red in one: validation names the run and the differing stdout."""
    report = validate(OUTPUT, FakeSandbox(flaky_printing("2\n", "2\n", "3\n")), Limits())
    assert not report.ok
    flaky = report.checks[-1]
    assert (flaky.name, flaky.ok, flaky.environment) == (
        "the same outcome in every run",
        False,
        "env-a",
    )
    assert flaky.detail == "the code: run 1 and run 3 of 3 differ in stdout '2\\n' vs '3\\n'"


def test_every_run_must_meet_the_expectation() -> None:
    """The expectation check reports the first run that fails it, not just the first run."""
    report = validate(OUTPUT, FakeSandbox(flaky_printing("2\n", "3\n", "2\n")), Limits())
    assert report.checks[0].ok is False
    assert report.checks[0].detail.startswith("output does not match (exact)")


def test_a_flaky_code_option_is_named() -> None:
    """A code option whose outcome differs between runs is named in the refusal."""
    answers = iter([False, True] + [False] * 20)

    def answer(env: str, req: RunRequest) -> Observation:
        code = req.files[req.entry]
        broken = code == "bad =" or (code == "also bad =" and next(answers))
        return compile_errors_for(code if broken else "")(env, req)

    report = validate(SYNTAX, FakeSandbox(answer), Limits(), runs=2)
    assert not report.ok
    assert report.checks[-1].detail.startswith(
        "option C: run 1 and run 2 of 2 differ in status 'completed' vs 'syntax_error', "
        "syntax_error None vs {'type': 'SyntaxError', 'message': 'invalid syntax', "
    )


def test_object_addresses_and_timings_are_not_differences() -> None:
    """Two runs that differ only in an object's address and in wall time are the same."""

    def failed(address: str, seconds: float) -> Observation:
        message = f"assert <coroutine object token at {address}> == 'secret'"
        test = TestResult(nodeid="t.py::test_token", outcome=TestOutcome.FAILED, message=message)
        return observed("env-a", RunMode.PYTEST, tests=(test,), wall_seconds=seconds, exit_code=1)

    assert first_difference([failed("0x7f1d93a9a770", 0.5), failed("0x7fbf7e5218a0", 0.9)]) is None


OUTCOME = challenge(
    kind="outcome",
    mode="pytest",
    filterwarnings=["error"],
    code="async def test_ping(): pass",
    answer="B",
    options=[
        {"label": "A", "text": "1 passed"},
        {"label": "B", "text": "1 skipped, 1 warning"},
        {"label": "C", "text": "1 failed"},
    ],
    expectation={"outcome": {"summary": "1 skipped, 1 warning"}},
    environments={
        "env-b": {"expectation": {"exception": {"type": "TypeError"}}},
    },
)


def outcomes(env: str, req: RunRequest) -> Observation:
    if env == "env-a":
        return observed(env, RunMode.PYTEST, pytest_summary={"skipped": 1, "warnings": 1})
    raised = ExceptionInfo(type="TypeError", message="nope")
    return observed(env, RunMode.PYTEST, exception=raised, exit_code=2)


def test_outcome_keys_and_a_truth_of_another_kind_elsewhere() -> None:
    """Summary-line options are proven against pytest's summary; env-b's truth is an exception."""
    sandbox = FakeSandbox(outcomes)
    report = validate(OUTCOME, sandbox, Limits(), runs=1)
    assert report.ok
    assert [(c.name, c.environment, c.detail) for c in report.checks] == [
        ("code meets the expectation", "env-a", "pytest reported 1 skipped, 1 warning"),
        (
            "keyed text equals the observation",
            "env-a",
            "B's text is what was observed, and no other option's "
            "(pytest reported 1 skipped, 1 warning)",
        ),
        ("code meets the expectation", "env-b", "raised TypeError: nope"),
    ]
    assert all(req.filterwarnings == ("error",) for _, req, _ in sandbox.runs)


def test_a_wrong_outcome_key_is_refuted() -> None:
    """With key A ('1 passed') the observed '1 skipped, 1 warning' refutes it."""
    wrong = OUTCOME.model_copy(update={"answer": "A"})
    report = validate(wrong, FakeSandbox(outcomes), Limits(), runs=1)
    assert report.checks[1].detail == (
        "options equal to the observation: B; key: A (pytest reported 1 skipped, 1 warning)"
    )


def test_the_matrix_shows_the_kind_of_each_environments_truth() -> None:
    """Each cell says what happened and the kind of truth recorded there."""
    row = matrix_row(OUTCOME, ["env-a", "env-b", "env-c"], FakeSandbox(outcomes), Limits())
    assert row is not None
    assert [(c.environment, c.kind, c.expected, c.outcome) for c in row.cells] == [
        ("env-a", Kind.OUTCOME, True, "ok"),
        ("env-b", Kind.EXCEPTION, True, "TypeError: nope"),
        ("env-c", None, None, "TypeError: nope"),
    ]


def test_summarize_names_outcomes_collection_errors_and_warnings() -> None:
    """The matrix's short outcome keeps 'k/n passed' and adds what else pytest reported."""
    tests = (
        TestResult(nodeid="t.py::test_a", outcome=TestOutcome.PASSED),
        TestResult(nodeid="t.py::test_b", outcome=TestOutcome.SKIPPED),
        TestResult(nodeid="t.py::test_c", outcome=TestOutcome.ERROR, when="setup"),
    )
    warning = WarningInfo(category="pytest.PytestUnhandledCoroutineWarning", message="m")
    assert summarize(observed("e", RunMode.PYTEST, tests=tests, warnings=(warning,))) == (
        "1/3 passed, 1 skipped, 1 error at setup; warned PytestUnhandledCoroutineWarning"
    )
    failed = TestResult(
        nodeid="t.py::test_a",
        outcome=TestOutcome.FAILED,
        exception=ExceptionInfo(
            type="AssertionError", message="assert <c at 0x7f3dc2a1b0> == 1\nmore"
        ),
    )
    assert summarize(observed("e", RunMode.PYTEST, tests=(failed,))) == (
        "0/1 passed; AssertionError: assert <c at 0x…> == 1"
    )
    error = CollectionError(
        nodeid="t.py", message="...", exception=ExceptionInfo(type="Failed", message="In t: no")
    )
    assert summarize(observed("e", RunMode.PYTEST, collection_errors=(error,))) == (
        "collection error Failed: In t: no"
    )


def test_a_failing_output_check_shows_expected_and_actual_as_a_diff() -> None:
    """What the code printed is shown beside the expectation, as a unified diff."""
    report = validate(OUTPUT, FakeSandbox(printing("3\n")), Limits(), runs=1)
    code, key = report.checks
    assert (code.ok, code.detail) == (False, "output does not match (exact)")
    assert code.observed == "--- expected\n+++ actual\n@@ -1 +1 @@\n-2\n+3"
    assert key.observed == "printed:\n  | 3"


def test_a_failing_regex_output_check_shows_the_pattern_and_the_output() -> None:
    """A regex is no text to diff against: the pattern, then the output as printed."""
    regex = challenge(
        kind="output",
        code="print(2)",
        expectation={"output": {"match": "regex", "stdout": r"\d+ items\n"}},
    )
    report = validate(regex, FakeSandbox(printing("2\nthings\n")), Limits(), runs=1)
    assert report.checks[0].observed == (
        "expected output matching /\\d+ items\\n/; the code printed:\n  | 2\n  | things"
    )


def test_a_failing_exception_check_shows_what_was_observed() -> None:
    """For other kinds, the observation: here the exception that was raised and its line."""
    raising = challenge(
        kind="exception", code="x", expectation={"exception": {"type": "RuntimeError"}}
    )

    def answer(env: str, req: RunRequest) -> Observation:
        return observed(
            env,
            exit_code=1,
            exception=ExceptionInfo(type="KeyError", message="'a'", line=3),
            stdout=CapturedStream(text="start\n", bytes=6),
        )

    (check,) = validate(raising, FakeSandbox(answer), Limits(), runs=1).checks
    assert check.detail == "expected RuntimeError, got KeyError: 'a'"
    assert check.observed == "raised KeyError: 'a' (line 3)\nexit code 1\nprinted:\n  | start"


def test_a_key_that_does_not_produce_the_outcome_shows_what_it_did() -> None:
    """When the keyed option fails, its own reason and observation are shown."""
    report = validate(SYNTAX, FakeSandbox(compile_errors_for("also bad =")), Limits(), runs=1)
    (check,) = report.checks
    assert check.detail == "options producing it: C; key: B"
    assert check.observed == (
        "the key, B: expected a SyntaxError, but the code compiled\nprinted nothing"
    )


def test_passing_checks_carry_no_observation() -> None:
    """A check that holds needs nothing more than its detail."""
    report = validate(OUTPUT, FakeSandbox(printing("2\n")), Limits(), runs=1)
    assert [c.observed for c in report.checks] == ["", ""]
