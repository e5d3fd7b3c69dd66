"""A finished submission in the result formats platforms already consume.

Pure functions of a stored ``Submission``: no I/O. Each format follows its published spec:

- ``exercism-v3``: Exercism's test-runner ``results.json``, version 3
  (https://github.com/exercism/docs/blob/main/building/tooling/test-runners/interface.md);
- ``gradescope``: Gradescope's autograder ``results.json``
  (https://gradescope-autograders.readthedocs.io/en/latest/specs/);
- ``prairielearn``: PrairieLearn's external grading results
  (https://prairielearn.readthedocs.io/en/latest/externalGrading/#grading-results).

Where a format has no nesting but a pass/fail status per test (Exercism, Gradescope), a
test's subtests follow it as entries of their own, named ``test_x [variation]``; PrairieLearn
has only points, so they fold into their test's message. Kinds without hidden tests
(output, exception, state, a choice, ...) become one synthetic test named after the
challenge. Hidden test source is only sent when the caller passes it (``test_code``); the
API never does (docs/api.md, "Result formats").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from ..errors import GraderError
from .submission import Submission, SubmissionStatus
from .verdict import SubtestVerdict, TestVerdict, Verdict, VerdictStatus


class ResultFormat(StrEnum):
    """The values of ``GET /v1/submissions/{id}?format=``."""

    GRADER = "grader"
    EXERCISM_V3 = "exercism-v3"
    GRADESCOPE = "gradescope"
    PRAIRIELEARN = "prairielearn"


class Standing(StrEnum):
    """The verdict ladder: whose outcome a verdict status is."""

    PASSED = "passed"
    FAILED = "failed"
    """The learner's code ran and failed the tests (or a limit): a grade."""
    UNTESTED = "untested"
    """The learner's code could not be tested: it does not compile or import, or the answer
    is not valid for the challenge. No grade, and the learner can fix it."""
    OURS = "ours"
    """We could not grade it (the sandbox or the infrastructure failed): never the learner's."""


LADDER: Mapping[VerdictStatus, Standing] = {
    VerdictStatus.PASSED: Standing.PASSED,
    VerdictStatus.FAILED: Standing.FAILED,
    VerdictStatus.TIME_LIMIT_EXCEEDED: Standing.FAILED,
    VerdictStatus.MEMORY_LIMIT_EXCEEDED: Standing.FAILED,
    VerdictStatus.OUTPUT_LIMIT_EXCEEDED: Standing.FAILED,
    VerdictStatus.ERROR: Standing.UNTESTED,
    VerdictStatus.REJECTED: Standing.UNTESTED,
    VerdictStatus.SANDBOX_ERROR: Standing.OURS,
}

_HEADLINES = {
    VerdictStatus.TIME_LIMIT_EXCEEDED: "Your code ran longer than the time limit.",
    VerdictStatus.MEMORY_LIMIT_EXCEEDED: "Your code used more memory than the limit.",
    VerdictStatus.OUTPUT_LIMIT_EXCEEDED: "Your code printed more output than the limit.",
    VerdictStatus.SANDBOX_ERROR: (
        "We could not grade this submission; this says nothing about your code. "
        "Please submit it again."
    ),
}
EXERCISM_OUTPUT_CHARS = 500
EXERCISM_TRUNCATED = "\nOutput was truncated. Please limit to 500 chars"
EXERCISM_MESSAGE_CHARS = 65535
_MESSAGE_TRUNCATED = "\n[message truncated at 65535 characters]"
OUR_FAULT = "could not grade this submission (our fault, not yours)"


class NotExportable(GraderError):
    """No document in that format: the submission is unfinished, or the format cannot say so.

    ``code`` is the API's error code (``not_finished``, ``not_graded``); the API answers 409.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Entry:
    """One flat test entry: a hidden test, a subtest, or the one synthetic test of a kind."""

    name: str
    passed: bool
    errored: bool
    message: str | None
    output: str
    points: float | None
    """``None`` for subtests: their parent test carries the points."""
    max_points: float | None
    task_id: int | None = None
    test_code: str | None = None


def export(
    submission: Submission,
    fmt: ResultFormat,
    *,
    test_code: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``submission`` as a ``fmt`` document; ``NotExportable`` when it has none (409)."""
    if fmt is ResultFormat.GRADER:
        return submission.public()
    if submission.status not in (SubmissionStatus.DONE, SubmissionStatus.FAILED):
        raise NotExportable(
            "not_finished",
            f"submission {submission.id!r} is {submission.status.value}: it has no result "
            f"in {fmt.value} yet; retry later, or add ?wait=<seconds>",
        )
    verdict = final_verdict(submission)
    if fmt is ResultFormat.EXERCISM_V3:
        return exercism_v3(verdict, submission.challenge_id, test_code or {})
    if fmt is ResultFormat.GRADESCOPE:
        return gradescope(verdict, submission.challenge_id)
    return prairielearn(verdict, submission.challenge_id)


def final_verdict(submission: Submission) -> Verdict:
    """The stored verdict; a ``failed`` submission without one is our fault."""
    if submission.verdict is not None:
        return submission.verdict
    return Verdict(status=VerdictStatus.SANDBOX_ERROR, reason=OUR_FAULT)


# the shared reading of a verdict ------------------------------------------------------------


def describe(verdict: Verdict) -> str:
    """What a learner reads about the whole submission: the headline, then the reason."""
    headline = _HEADLINES.get(verdict.status)
    reason = verdict.reason if verdict.reason != verdict.status.value else ""
    return "\n".join(part for part in (headline, reason) if part) or verdict.status.value


def whole_error(verdict: Verdict) -> str:
    """The whole error of a run that could not be tested or graded, as the learner needs it.

    The reason, then what the run saw: the compile error with its line, pytest's whole
    collection report, the uncaught exception's traceback.
    """
    parts = [describe(verdict)]
    obs = verdict.observation
    if obs is not None:
        info = obs.syntax_error
        if info is not None:
            where = f'  File "{info.file}", line {info.line}\n' if info.line else ""
            text = f"    {info.text.rstrip()}\n" if info.text.strip() else ""
            parts.append(f"{where}{text}{info.type}: {info.message}")
        parts += [error.message for error in obs.collection_errors]
        if obs.exception is not None and obs.exception.traceback:
            parts.append(obs.exception.traceback.rstrip())
    return "\n\n".join(parts)


def _test_passed(test: TestVerdict) -> bool:
    # Points zeroed because the supervisor contradicted the claimed passes count as a failure.
    return test.status == "passed" and test.points >= test.max_points


def _test_message(test: TestVerdict, verdict: Verdict) -> str | None:
    if _test_passed(test):
        return test.message
    if test.message:
        return test.message
    if test.status == "passed":
        return verdict.reason
    return f"this test {test.status.replace('_', ' ')}"


def variation_name(test: str, variation: str) -> str:
    """``test_x [variation]``; a variation pytest already shows bracketed is kept as is."""
    if variation.startswith(("[", "(")):
        return f"{test} {variation}"
    return f"{test} [{variation}]"


def _subtest_entry(parent: TestVerdict, sub: SubtestVerdict) -> Entry:
    passed = sub.status == "passed"
    message = sub.message or (None if passed else f"this variation {sub.status}")
    return Entry(
        name=variation_name(parent.name, sub.name),
        passed=passed,
        errored=sub.status == "error",
        message=message,
        output=sub.output,
        points=None,
        max_points=None,
        task_id=parent.task_id,
    )


def entries(
    verdict: Verdict,
    challenge_id: str,
    test_code: Mapping[str, str],
    *,
    fold_subtests: bool = False,
) -> list[Entry]:
    """The verdict's tests, each followed by its subtests (or with them folded into its
    message and output); or one synthetic test that carries the whole verdict."""
    if not verdict.tests:
        obs = verdict.observation
        untested = LADDER[verdict.status] in (Standing.UNTESTED, Standing.OURS)
        message = whole_error(verdict) if untested else describe(verdict)
        if verdict.diff:
            message += f"\n\n{verdict.diff}"
        return [
            Entry(
                name=challenge_id,
                passed=verdict.passed,
                errored=untested,
                message=message,
                output=obs.stdout.text if obs is not None else "",
                points=verdict.points,
                max_points=verdict.max_points,
            )
        ]
    flat: list[Entry] = []
    for test in verdict.tests:
        entry = Entry(
            name=test.name,
            passed=_test_passed(test),
            errored=test.status in ("error", "not_run"),
            message=_test_message(test, verdict),
            output=test.output,
            points=test.points,
            max_points=test.max_points,
            task_id=test.task_id,
            test_code=test_code.get(test.name),
        )
        subs = [_subtest_entry(test, sub) for sub in test.subtests]
        if fold_subtests and subs:
            flat.append(_folded(entry, subs))
        else:
            flat += [entry, *subs]
    return flat


def _folded(entry: Entry, subs: list[Entry]) -> Entry:
    """``entry`` with one line per subtest in its message, and their output after its own."""
    lines = [
        f"{sub.name}: {'passed' if sub.passed else 'failed'}"
        + (f": {sub.message}" if sub.message and not sub.passed else "")
        for sub in subs
    ]
    message = "\n".join([entry.message, *lines] if entry.message else lines)
    outputs = [entry.output] if entry.output else []
    outputs += [f"{sub.name}:\n{sub.output}" for sub in subs if sub.output]
    return replace(entry, message=message, output="\n".join(outputs))


def _capped(text: str, limit: int, notice: str) -> str:
    return text if len(text) <= limit else text[: limit - len(notice)] + notice


# Exercism -----------------------------------------------------------------------------------


def exercism_v3(
    verdict: Verdict, challenge_id: str, test_code: Mapping[str, str]
) -> dict[str, Any]:
    """Exercism ``results.json`` v3: ``pass``/``fail`` with tests, or ``error`` with a message.

    ``error`` is every standing but a grade of tests that ran (untested, ours, and the limits:
    a run killed at a limit executed no test to the end). Optional keys without a value are
    omitted; ``message`` is null unless the status is ``error``, as the spec's example.
    """
    standing = LADDER[verdict.status]
    if standing in (Standing.UNTESTED, Standing.OURS) or verdict.status in _HEADLINES:
        document: dict[str, Any] = {
            "version": 3,
            "status": "error",
            "message": _capped(whole_error(verdict), EXERCISM_MESSAGE_CHARS, _MESSAGE_TRUNCATED),
        }
        if verdict.tests:
            document["tests"] = _exercism_tests(verdict, challenge_id, test_code)
        return document
    return {
        "version": 3,
        "status": "pass" if standing is Standing.PASSED else "fail",
        "message": None,
        "tests": _exercism_tests(verdict, challenge_id, test_code),
    }


def _exercism_tests(
    verdict: Verdict, challenge_id: str, test_code: Mapping[str, str]
) -> list[dict[str, Any]]:
    tests = []
    for entry in entries(verdict, challenge_id, test_code):
        test: dict[str, Any] = {
            "name": entry.name,
            "status": "pass" if entry.passed else "error" if entry.errored else "fail",
        }
        if entry.message is not None and not entry.passed:  # shown when a test does not pass
            test["message"] = entry.message
        if entry.output:
            test["output"] = _capped(entry.output, EXERCISM_OUTPUT_CHARS, EXERCISM_TRUNCATED)
        if entry.test_code is not None:
            test["test_code"] = entry.test_code
        if entry.task_id is not None:
            test["task_id"] = entry.task_id
        tests.append(test)
    return tests


# Gradescope ---------------------------------------------------------------------------------


def gradescope(verdict: Verdict, challenge_id: str) -> dict[str, Any]:
    """Gradescope ``results.json``: the points earned, one test per entry.

    Subtests are informational tests (a status, no score), so the tests' scores sum to the
    top-level ``score``. The top-level ``output`` is learner text: ``output_format: text``
    keeps Gradescope from rendering it as HTML (its top-level default is ``simple_format``).
    Gradescope has no "could not grade" state, so our failures have no document (409).
    """
    if LADDER[verdict.status] is Standing.OURS:
        raise NotExportable(
            "not_graded",
            f"this submission could not be graded ({verdict.status.value}: "
            f"{verdict.reason or OUR_FAULT}); Gradescope's results.json has no 'not graded' "
            "state and a score of 0 would blame the learner: submit it again",
        )
    tests = []
    for entry in entries(verdict, challenge_id, {}):
        test: dict[str, Any] = {"name": entry.name}
        if entry.points is not None and entry.max_points is not None:
            test["score"] = entry.points
            test["max_score"] = entry.max_points
        test["status"] = "passed" if entry.passed else "failed"
        parts = [entry.message.rstrip("\n")] if entry.message else []
        parts += [f"Output:\n{entry.output}"] if entry.output else []
        if parts:
            test["output"] = "\n\n".join(parts)
        tests.append(test)
    untested = LADDER[verdict.status] is Standing.UNTESTED
    output = whole_error(verdict) if untested else describe(verdict)
    return {
        "score": verdict.points,
        "output": output,
        "output_format": "text",
        "tests": tests,
        "extra_data": {"status": verdict.status.value, "max_score": verdict.max_points},
    }


# PrairieLearn -------------------------------------------------------------------------------


def prairielearn(verdict: Verdict, challenge_id: str) -> dict[str, Any]:
    """PrairieLearn results: a 0-1 ``score`` and tests, or ``gradable: false``.

    Code that could not be tested and our own failures are not gradable: PrairieLearn then
    awards and deducts nothing and does not count the attempt. Tests have no status but their
    points, so subtests fold into their test's message and output: an entry of 0 of 0 points
    would show a failed variation as full marks.
    """
    standing = LADDER[verdict.status]
    obs = verdict.observation
    output = obs.stdout.text if obs is not None else ""
    if standing in (Standing.UNTESTED, Standing.OURS):
        message = whole_error(verdict)
        document: dict[str, Any] = {"gradable": False, "message": message, "output": output}
        if standing is Standing.UNTESTED:
            document["format_errors"] = [message]
        return document
    return {
        "gradable": True,
        "score": verdict.score,
        "message": describe(verdict),
        "output": output,
        "tests": [
            {
                "name": entry.name,
                "points": entry.points if entry.points is not None else 0,
                "max_points": entry.max_points if entry.max_points is not None else 0,
                "message": entry.message or "",
                "output": entry.output,
            }
            for entry in entries(verdict, challenge_id, {}, fold_subtests=True)
        ],
    }
