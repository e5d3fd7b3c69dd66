"""The grading recipe: admission, the run a challenge asks for, and the verdict of a submission."""

from __future__ import annotations

import pytest

from grader.domain import (
    CapturedStream,
    ExceptionInfo,
    LearnerCode,
    Limits,
    Observation,
    RunMode,
    RunRequest,
)
from grader.domain.challenge import Challenge
from grader.domain.grading import grade, refusal, request_for
from grader.domain.submission import Submission
from grader.domain.verdict import VerdictStatus
from grader.errors import SandboxError
from grader.sandbox.testing import FakeSandbox, completed


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
CODE_ONLY = challenge(kind="output", code="print(2)", expectation={"output": {"stdout": "2\n"}})
CONCEPTUAL = challenge(
    kind="conceptual",
    answer="B",
    options=[{"label": "A", "text": "no"}, {"label": "B", "text": "yes"}],
)


def submission(**fields: object) -> Submission:
    return Submission.model_validate({"id": "x", "key_id": "k", "challenge_id": "s/c", **fields})


def printing(text: str) -> FakeSandbox:
    return FakeSandbox(lambda env, _: completed(env, stdout=CapturedStream(text=text, bytes=1)))


@pytest.mark.parametrize(
    ("target", "code", "choice", "reason"),
    [
        (OUTPUT, True, False, None),
        (OUTPUT, False, True, None),
        (CODE_ONLY, False, True, "s/c takes code, not a choice"),
        (CONCEPTUAL, True, False, "s/c is answered by choice, not by code"),
        (CONCEPTUAL, False, True, None),
    ],
)
def test_refusal(target: Challenge, code: bool, choice: bool, reason: str | None) -> None:
    """The one admission rule the API and the worker both apply."""
    assert refusal(target, code=code, choice=choice) == reason


def test_request_for_a_script_and_a_pytest_snippet() -> None:
    """Scripts run as main.py, pytest-mode snippets as test_snippet.py, with the state asked."""
    assert request_for(CODE_ONLY, "print(1)", CODE_ONLY.expectation) == RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "print(1)"}, entry="main.py"
    )
    pytest_mode = challenge(
        kind="state",
        mode="pytest",
        code="counter = 1",
        expectation={"state": {"values": {"counter": 1}}},
    )
    assert request_for(pytest_mode, "counter = 1", pytest_mode.expectation) == RunRequest(
        mode=RunMode.PYTEST,
        files={"test_snippet.py": "counter = 1"},
        entry="test_snippet.py",
        state=("counter",),
    )


def test_grade_runs_code_and_compares_outside() -> None:
    """Code runs in the submission's environment; the verdict compares what it printed."""
    sandbox = printing("3\n")
    verdict = grade(
        submission(code="print(3)", environment="env-a"), OUTPUT, sandbox, Limits(wall_seconds=2)
    )
    assert verdict.status is VerdictStatus.FAILED
    assert [(env, req.files, limits.wall_seconds) for env, req, limits in sandbox.runs] == [
        ("env-a", {"main.py": "print(3)"}, 2)
    ]


def test_grade_a_choice_runs_nothing() -> None:
    """A choice is graded against the key without a sandbox run."""
    sandbox = printing("")
    assert grade(submission(choice="A"), OUTPUT, sandbox, Limits()).status is VerdictStatus.PASSED
    assert grade(submission(choice="B"), OUTPUT, sandbox, Limits()).status is VerdictStatus.FAILED
    assert sandbox.runs == []


def test_grade_refuses_code_for_a_conceptual_challenge() -> None:
    """Code sent to a conceptual challenge is rejected without a run."""
    sandbox = printing("")
    verdict = grade(submission(code="print(1)"), CONCEPTUAL, sandbox, Limits())
    assert verdict.status is VerdictStatus.REJECTED
    assert verdict.reason == "s/c is answered by choice, not by code"
    assert sandbox.runs == []


def test_grade_lets_infrastructure_failures_propagate() -> None:
    """Our failures are exceptions for the caller to retry, never a verdict."""

    def broken(_: str, __: RunRequest) -> Observation:
        raise SandboxError("engine down")

    with pytest.raises(SandboxError, match="engine down"):
        grade(submission(code="print(2)"), OUTPUT, FakeSandbox(broken), Limits())


DRIFT = challenge(
    kind="output",
    code="print(2)",
    expectation={"output": {"stdout": "2\n"}},
    environments={
        "env-b": {"expectation": {"exception": {"type": "TypeError", "line": 1}}},
    },
)


def raising(env: str, _: RunRequest) -> Observation:
    return completed(
        env, exit_code=1, exception=ExceptionInfo(type="TypeError", message="no", line=1)
    )


def test_grade_uses_the_kind_of_the_environments_truth() -> None:
    """An output challenge whose truth in env-b is an exception grades env-b answers as one."""
    sandbox = FakeSandbox(raising)
    in_b = grade(submission(code="print(2)", environment="env-b"), DRIFT, sandbox, Limits())
    in_a = grade(submission(code="print(2)", environment="env-a"), DRIFT, sandbox, Limits())
    assert (in_b.status, in_b.reason) == (VerdictStatus.PASSED, "raised TypeError: no")
    assert in_a.status is VerdictStatus.FAILED
    assert in_a.reason == "output does not match (exact); the run raised TypeError: no"


def test_every_run_of_a_challenge_carries_its_warning_filters() -> None:
    """A learner's run gets the challenge's -W options, exactly as validate's runs do."""
    strict = challenge(
        kind="output",
        code="print(2)",
        filterwarnings=["error"],
        expectation={"output": {"stdout": "2\n"}},
    )
    assert request_for(strict, "print(3)", strict.expectation).filterwarnings == ("error",)
    sandbox = printing("2\n")
    grade(submission(code="print(2)"), strict, sandbox, Limits())
    assert [req.filterwarnings for _, req, _ in sandbox.runs] == [("error",)]


def test_several_hidden_files_are_laid_out_and_every_test_file_runs() -> None:
    """The solution beside every hidden file; the test files listed when there are several."""
    challenge = Challenge.model_validate(
        {
            "id": "cart",
            "set": "demo",
            "title": "Cart",
            "kind": "tests",
            "mode": "pytest",
            "prompt": "Write cart.py.",
            "code": "def total(items):\n    return 0\n",
            "expectation": {
                "tests": {
                    "solution_file": "cart.py",
                    "files": {
                        "conftest.py": "",
                        "data/cases.json": "[]",
                        "test_a.py": "def test_a(): pass\n",
                        "b_test.py": "def test_b(): pass\n",
                    },
                }
            },
        }
    )
    hidden = {
        "conftest.py": "",
        "data/cases.json": "[]",
        "test_a.py": "def test_a(): pass\n",
        "b_test.py": "def test_b(): pass\n",
    }
    request = request_for(challenge, "learner", challenge.expectation)
    assert request.files == hidden  # the judge's: the learner's code is never among them
    assert request.learner == LearnerCode(files={"cart.py": "learner"}, modules=("cart",))
    assert (request.entry, request.test_files) == ("test_a.py", ("test_a.py", "b_test.py"))
    assert request.mode is RunMode.PYTEST
    in_process = request_for(challenge, "learner", challenge.expectation, isolated=False)
    assert in_process.files == {"cart.py": "learner", **hidden}
    assert in_process.learner is None
    assert in_process.test_files == ("test_a.py", "b_test.py")
