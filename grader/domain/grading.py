"""The grading recipe: which answers a challenge admits, how code is run, how it is judged.

Used by the API (admission, before anything is queued), the worker (every production run) and
``grader challenges validate`` (the challenge's own code and options). The comparison happens
on the worker, outside the container: nothing of the expectation enters the sandbox except
hidden test code.
"""

from __future__ import annotations

from collections.abc import Mapping

from .challenge import Challenge, Expectation, Kind
from .compare import compare, grade_choice
from .observation import LearnerCode, Limits, RunMode, RunRequest
from .sandbox import Sandbox
from .submission import Submission
from .verdict import Verdict, VerdictStatus

SNIPPET_FILE = "main.py"
TEST_SNIPPET_FILE = "test_snippet.py"


def refusal(challenge: Challenge, *, code: bool, choice: bool, files: bool = False) -> str | None:
    """Why ``challenge`` cannot take this kind of answer, or None when it can."""
    if choice and not challenge.options:
        return f"{challenge.qualified_id} takes code, not a choice"
    if (code or files) and challenge.kind is Kind.CONCEPTUAL:
        return f"{challenge.qualified_id} is answered by choice, not by code"
    if files and challenge.files is None:
        return f"{challenge.qualified_id} takes one file: send 'code', not 'files'"
    return None


def entry_file(challenge: Challenge, expectation: Expectation | None) -> str:
    """The file a learner's ``code`` becomes, and the one a ``files`` answer must include."""
    if expectation is not None and expectation.tests is not None:
        return expectation.tests.solution_file
    if challenge.files is not None:
        return challenge.files.entry
    return TEST_SNIPPET_FILE if challenge.mode is RunMode.PYTEST else SNIPPET_FILE


def request_for(
    challenge: Challenge,
    code: str,
    expectation: Expectation | None,
    *,
    isolated: bool = True,
    files: Mapping[str, str] | None = None,
) -> RunRequest:
    """The run of ``code`` (the challenge's, an option's or a learner's) for this challenge.

    ``files``, when given, are the learner's several files instead (``code`` is then unused);
    the challenge's entry runs. Hidden tests run ``isolated`` from the code under test: in a
    process that never executes it and that it can neither read nor write (docs/harness.md,
    "Isolated runs"). In-process (``isolated=False``) is kept for comparison in the benchmark.
    """
    state = challenge.state_names(expectation)
    warnings = challenge.filterwarnings  # every run of the challenge carries its -W options
    entry = entry_file(challenge, expectation)
    learner = dict(files) if files is not None else {entry: code}
    if expectation is not None and expectation.tests is not None:
        tests = expectation.tests
        test_files = tests.test_files()
        if isolated:
            return RunRequest(
                mode=RunMode.PYTEST,
                entry=test_files[0],
                files=tests.hidden_files(),
                filterwarnings=warnings,
                test_files=tuple(test_files) if len(test_files) > 1 else (),
                learner=LearnerCode(
                    files=learner, modules=(tests.solution_file.removesuffix(".py"),)
                ),
            )
        return RunRequest(
            mode=RunMode.PYTEST,
            entry=test_files[0],
            state=state,
            files={**learner, **tests.hidden_files()},
            filterwarnings=warnings,
            # pytest runs the entry alone unless told of every test file
            test_files=tuple(test_files) if len(test_files) > 1 else (),
        )
    return RunRequest(
        mode=challenge.mode,
        files=learner,
        entry=entry,
        state=state,
        filterwarnings=warnings,
        cases=expectation.io.stdins() if expectation is not None and expectation.io else (),
    )


def grade(
    submission: Submission, challenge: Challenge, sandbox: Sandbox, limits: Limits
) -> Verdict:
    """The verdict of one submission. Infrastructure failures propagate as exceptions."""
    if submission.choice is not None:
        return grade_choice(challenge, submission.choice)
    if submission.code is None and submission.files is None:
        return Verdict(status=VerdictStatus.REJECTED, reason="no code, files or choice")
    environment = submission.environment or challenge.environment
    expectation = challenge.expectation_for(environment)
    refused = refusal(
        challenge, code=submission.code is not None, choice=False, files=bool(submission.files)
    )
    if refused is not None or expectation is None:
        return Verdict(
            status=VerdictStatus.REJECTED,
            reason=refused or f"{challenge.qualified_id} has no expectation in {environment}",
        )
    request = request_for(challenge, submission.code or "", expectation, files=submission.files)
    request = request.model_copy(update={"tenant": submission.key_id})
    observation = sandbox.run(environment, request, limits)
    return compare(challenge.kind, expectation, observation)
