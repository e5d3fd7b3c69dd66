"""Finished submissions, one per rung of the verdict ladder, for the exporters' golden files.

Hand-built, deterministic (fixed ids and times), shaped like what ``compare`` stores.
"""

from __future__ import annotations

from datetime import UTC, datetime

from grader.domain import (
    CapturedStream,
    CollectionError,
    EnvironmentRef,
    ExceptionInfo,
    Observation,
    RunMode,
    RunStatus,
    Submission,
    SubmissionStatus,
    SyntaxErrorInfo,
)
from grader.domain.verdict import SubtestVerdict, TestVerdict, Verdict, VerdictStatus

ENV = EnvironmentRef(name="fastapi-0.115-httpx-0.27", image_id="sha256:" + "ab" * 32)
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TESTS_CHALLENGE = "golden/items-api"
LONG_OUTPUT = "".join(f"deleting item {i}\n" for i in range(40))
"""640 characters a learner printed: more than Exercism's 500."""


def _obs(status: RunStatus = RunStatus.COMPLETED, **fields: object) -> Observation:
    return Observation.model_validate(
        {"status": status, "environment": ENV, "mode": RunMode.PYTEST, **fields}
    )


def _submission(
    verdict: Verdict | None,
    challenge_id: str = TESTS_CHALLENGE,
    status: SubmissionStatus = SubmissionStatus.DONE,
    *,
    choice: str | None = None,
) -> Submission:
    return Submission(
        id="sub-golden",
        key_id="golden-key",
        challenge_id=challenge_id,
        environment=ENV.name,
        code=None if choice else "def create(): ...\n",
        choice=choice,
        status=status,
        created_at=WHEN,
        updated_at=WHEN,
        finished_at=WHEN if status in (SubmissionStatus.DONE, SubmissionStatus.FAILED) else None,
        verdict=verdict,
    )


def _test(
    name: str, status: str, points: float, max_points: float, **fields: object
) -> TestVerdict:
    return TestVerdict.model_validate(
        {"name": name, "status": status, "points": points, "max_points": max_points, **fields}
    )


def tests_passed() -> Submission:
    tests = (
        _test("test_create", "passed", 2, 2),
        _test("test_delete", "passed", 3, 3, output="deleted 1\n"),
    )
    verdict = Verdict(
        status=VerdictStatus.PASSED,
        reason="all 2 tests passed",
        score=1.0,
        points=5,
        max_points=5,
        tests=tests,
        observation=_obs(exit_code=0),
    )
    return _submission(verdict)


def tests_partly_failing() -> Submission:
    tests = (
        _test("test_create", "passed", 2, 2, output="created\n"),
        _test(
            "test_delete",
            "failed",
            0,
            3,
            message="AssertionError: assert 404 == 204",
            output=LONG_OUTPUT,
        ),
    )
    verdict = Verdict(
        status=VerdictStatus.FAILED,
        reason="1 of 2 tests did not pass: test_delete",
        score=0.4,
        points=2,
        max_points=5,
        tests=tests,
        observation=_obs(exit_code=1),
    )
    return _submission(verdict)


def tests_all_failing() -> Submission:
    tests = (
        _test("test_create", "failed", 0, 2, message="AssertionError: assert 500 == 201"),
        _test("TestItems::test_delete", "error", 0, 3, message="fixture 'client' not found"),
        _test("test_list", "not_run", 0, 1, message="this test did not run"),
    )
    verdict = Verdict(
        status=VerdictStatus.FAILED,
        reason="3 of 3 tests did not pass: test_create, TestItems::test_delete, test_list",
        score=0.0,
        points=0,
        max_points=6,
        tests=tests,
        observation=_obs(exit_code=1),
    )
    return _submission(verdict)


def error_syntax() -> Submission:
    info = SyntaxErrorInfo(
        type="SyntaxError",
        message="expected ':'",
        file="solution.py",
        line=3,
        offset=14,
        text="def create()\n",
    )
    verdict = Verdict(
        status=VerdictStatus.ERROR,
        reason="SyntaxError: expected ':' at line 3",
        max_points=5,
        observation=_obs(RunStatus.SYNTAX_ERROR, syntax_error=info, exit_code=1),
    )
    return _submission(verdict)


def error_collection() -> Submission:
    report = (
        "ImportError while importing test module '/sandbox/test_hidden.py'.\n"
        "Traceback:\n"
        "test_hidden.py:1: in <module>\n"
        "    from solution import create, delete\n"
        "E   ImportError: cannot import name 'delete' from 'solution' (/sandbox/solution.py)"
    )
    error = CollectionError(
        nodeid="test_hidden.py",
        message=report,
        exception=ExceptionInfo(
            type="ImportError", message="cannot import name 'delete' from 'solution'"
        ),
    )
    verdict = Verdict(
        status=VerdictStatus.ERROR,
        reason="the hidden tests could not be collected: ImportError: cannot import name "
        "'delete' from 'solution'",
        max_points=5,
        observation=_obs(collection_errors=(error,), exit_code=2, pytest_exit_code=2),
    )
    return _submission(verdict)


def subtests() -> Submission:
    variations = (
        SubtestVerdict(name="[even] (i=2)", status="passed"),
        SubtestVerdict(
            name="[even] (i=3)",
            status="failed",
            message="AssertionError: assert 3 % 2 == 0",
            output="checking 3\n",
        ),
        SubtestVerdict(name="i=4", status="passed"),
    )
    tests = (
        _test(
            "test_parity", "failed", 0, 2, message="1 of 3 variations failed", subtests=variations
        ),
        _test("test_other", "passed", 1, 1),
    )
    verdict = Verdict(
        status=VerdictStatus.FAILED,
        reason="1 of 2 tests did not pass: test_parity",
        score=1 / 3,
        points=1,
        max_points=3,
        tests=tests,
        observation=_obs(exit_code=1),
    )
    return _submission(verdict)


def task_ids() -> Submission:
    tests = (
        _test("test_expected_minutes", "passed", 1, 1, task_id=1),
        _test("test_remaining_minutes", "failed", 0, 1, message="assert 30 == 10", task_id=2),
        _test("test_no_task", "passed", 1, 1),
    )
    verdict = Verdict(
        status=VerdictStatus.FAILED,
        reason="1 of 3 tests did not pass: test_remaining_minutes",
        score=2 / 3,
        points=2,
        max_points=3,
        tests=tests,
        observation=_obs(exit_code=1),
    )
    return _submission(verdict, "golden/lasagna")


def time_limit() -> Submission:
    obs = _obs(
        RunStatus.TIME_LIMIT_EXCEEDED,
        timed_out=True,
        signal=9,
        stdout=CapturedStream(text="waiting...\n", bytes=11),
        error="wall time limit of 5.0 s exceeded",
    )
    verdict = Verdict(
        status=VerdictStatus.TIME_LIMIT_EXCEEDED,
        reason="wall time limit of 5.0 s exceeded",
        observation=obs,
    )
    return _submission(verdict)


def output_failed() -> Submission:
    obs = Observation(
        status=RunStatus.COMPLETED,
        environment=ENV,
        mode=RunMode.SCRIPT,
        stdout=CapturedStream(text="2\n", bytes=2),
        exit_code=0,
    )
    verdict = Verdict(
        status=VerdictStatus.FAILED,
        reason="output does not match (exact)",
        diff="--- expected\n+++ actual\n@@ -1 +1 @@\n-3\n+2\n",
        observation=obs,
    )
    return _submission(verdict, "async-test-mastery/q4-counter-after-test")


def output_passed() -> Submission:
    obs = Observation(
        status=RunStatus.COMPLETED,
        environment=ENV,
        mode=RunMode.SCRIPT,
        stdout=CapturedStream(text="3\n", bytes=2),
        exit_code=0,
    )
    verdict = Verdict(
        status=VerdictStatus.PASSED,
        reason="output matches",
        score=1.0,
        points=1.0,
        observation=obs,
    )
    return _submission(verdict, "async-test-mastery/q4-counter-after-test")


def choice_failed() -> Submission:
    verdict = Verdict(status=VerdictStatus.FAILED, reason="B is not the answer")
    return _submission(verdict, "async-test-mastery/q5-test-isolation", choice="B")


def rejected() -> Submission:
    verdict = Verdict(status=VerdictStatus.REJECTED, reason="choice 'E' is not one of A, B, C, D")
    return _submission(verdict, "async-test-mastery/q5-test-isolation", choice="E")


def sandbox_error() -> Submission:
    verdict = Verdict(
        status=VerdictStatus.SANDBOX_ERROR,
        reason="could not grade this submission (our fault, not yours)",
    )
    return _submission(verdict, status=SubmissionStatus.FAILED)


CASES = {
    "tests_passed": tests_passed,
    "tests_partly_failing": tests_partly_failing,
    "tests_all_failing": tests_all_failing,
    "error_syntax": error_syntax,
    "error_collection": error_collection,
    "subtests": subtests,
    "task_ids": task_ids,
    "time_limit": time_limit,
    "output_failed": output_failed,
    "output_passed": output_passed,
    "choice_failed": choice_failed,
    "rejected": rejected,
    "sandbox_error": sandbox_error,
}
