"""Comparison: an ``Observation`` against an ``Expectation``, outside the container.

Pure functions. Every failure carries a readable reason and, where text is compared, a diff.
What the snippet's own process claimed (exceptions, tests, pytest outcomes, state, warnings)
is cross-checked against what the supervisor observed (the exit status) before it can count
as a pass. The kind compared is the expectation's own: an environment's truth may be of
another kind than the challenge's.
"""

from __future__ import annotations

import json
import re

from ..constants import SANDBOX_WORKDIR
from .challenge import (
    Challenge,
    ExceptionExpectation,
    Expectation,
    Kind,
    OutputExpectation,
    StateExpectation,
    SyntaxExpectation,
)
from .hidden import TestsExpectation
from .io import io_verdict
from .observation import (
    ChildReportStatus,
    ExceptionInfo,
    Observation,
    RunMode,
    RunStatus,
    StateStatus,
    TestOutcome,
    TestResult,
)
from .outcomes import exception_problem, outcome_verdict, warnings_problem
from .text import (
    clip_output,
    json_equal,
    text_matches,
    unified_diff,
)
from .verdict import (
    RUN_LEVEL,
    SubtestVerdict,
    TestVerdict,
    Verdict,
    VerdictStatus,
    failing,
    passing,
)


def grade_choice(challenge: Challenge, choice: str) -> Verdict:
    """A multiple-choice answer against the key."""
    labels = [o.label for o in challenge.options]
    if not labels or challenge.answer is None:
        return Verdict(status=VerdictStatus.REJECTED, reason="this challenge has no options")
    if choice not in labels:
        return Verdict(
            status=VerdictStatus.REJECTED,
            reason=f"choice {choice!r} is not one of {', '.join(labels)}",
        )
    if choice == challenge.answer:
        return passing(f"{choice} is correct")
    return failing(f"{choice} is not the answer")


def compare(kind: Kind, expectation: Expectation, obs: Observation) -> Verdict:
    """Grade one observation; run-level failures win over everything else.

    The kind compared is the one ``expectation`` states (an environment's truth can be of
    another kind than its challenge's); ``kind`` only names it for one that states none.
    """
    kind = expectation.kind or kind
    if obs.status in RUN_LEVEL:
        return Verdict(
            status=RUN_LEVEL[obs.status], reason=obs.error or obs.status.value, observation=obs
        )
    try:
        verdict = _kind_verdict(kind, expectation, obs)
        if verdict.passed and expectation.warnings:
            problem = warnings_problem(expectation.warnings, obs)
            if problem is not None:
                verdict = failing(problem)
    except re.error as exc:
        # The loader compiles every regex; one that slipped past it is our fault, and the
        # submission still ends with a verdict rather than a crash.
        verdict = Verdict(
            status=VerdictStatus.SANDBOX_ERROR,
            reason=f"the challenge's expectation has an invalid regex: {exc}",
        )
    return verdict.model_copy(update={"observation": obs})


def _kind_verdict(kind: Kind, expectation: Expectation, obs: Observation) -> Verdict:
    if kind is Kind.TESTS and expectation.tests is not None:
        verdict = _tests(expectation.tests, obs)  # a syntax error is an ``error`` there
    elif kind is not Kind.SYNTAX and obs.status is RunStatus.SYNTAX_ERROR:
        info = obs.syntax_error
        where = f" at line {info.line}" if info and info.line else ""
        verdict = failing(
            f"{info.type if info else 'SyntaxError'}: {info.message if info else ''}{where}"
        )
    elif kind is Kind.SYNTAX and expectation.syntax is not None:
        verdict = _syntax(expectation.syntax, obs)
    elif kind is Kind.OUTPUT and expectation.output is not None:
        verdict = _output(expectation.output, obs)
    elif kind is Kind.EXCEPTION and expectation.exception is not None:
        verdict = _exception(expectation.exception, obs)
    elif kind is Kind.STATE and expectation.state is not None:
        verdict = _state(expectation.state, obs)
    elif kind is Kind.OUTCOME and expectation.outcome is not None:
        verdict = outcome_verdict(expectation.outcome, obs)
    elif kind is Kind.IO and expectation.io is not None:
        verdict = io_verdict(expectation.io, obs)
    else:
        verdict = Verdict(status=VerdictStatus.REJECTED, reason=f"no {kind} expectation to grade")
    return verdict


# text ---------------------------------------------------------------------------------------


def output_matches(rule: OutputExpectation, stdout: str) -> bool:
    """Whether ``stdout`` satisfies the output rule (also used to check option texts)."""
    return text_matches(rule.match, rule.stdout, stdout)


# kinds --------------------------------------------------------------------------------------


def _output(rule: OutputExpectation, obs: Observation) -> Verdict:
    actual = obs.stdout.text
    if output_matches(rule, actual):
        return passing("output matches")
    reason = f"output does not match ({rule.match})"
    if obs.stdout.truncated:
        reason += "; output was truncated"
    if obs.exception is not None:
        reason += f"; the run raised {obs.exception.type}: {obs.exception.message}"
    return failing(reason, diff=unified_diff(rule.stdout, actual))


def failing_exception(obs: Observation) -> ExceptionInfo | None:
    """The exception a run ended with: the script's, or the first failing test's."""
    if obs.mode is RunMode.SCRIPT:
        return obs.exception
    for test in obs.tests:
        if test.outcome in (TestOutcome.FAILED, TestOutcome.ERROR) and test.exception:
            return test.exception
    return obs.exception


def _exception(rule: ExceptionExpectation, obs: Observation) -> Verdict:
    if obs.child_report is not ChildReportStatus.OK:
        return failing(
            f"no exception report ({obs.child_report.value}): "
            f"{obs.child_report_error or 'the run ended early'}"
        )
    exc = failing_exception(obs)
    if exc is None:
        return failing(f"expected {rule.type}, but nothing was raised")
    if obs.exit_code == 0 and obs.mode is RunMode.SCRIPT and exc.type != "SystemExit":
        return failing("the report claims an exception but the process exited 0")
    problem = exception_problem(rule, exc)
    return failing(problem) if problem else passing(f"raised {exc.type}: {exc.message}")


def _syntax(rule: SyntaxExpectation, obs: Observation) -> Verdict:
    info = obs.syntax_error
    if obs.status is not RunStatus.SYNTAX_ERROR or info is None:
        return failing(f"expected a {rule.type}, but the code compiled")
    if info.type != rule.type:
        return failing(f"expected {rule.type}, got {info.type}: {info.message}")
    if rule.line is not None and info.line != rule.line:
        return failing(f"{info.type} at line {info.line}, expected line {rule.line}")
    if rule.message is not None and not rule.message.matches(info.message):
        return failing(f"{info.type} message {info.message!r} is not {rule.message.describe()}")
    return passing(f"{info.type}: {info.message} at line {info.line}")


def _state(rule: StateExpectation, obs: Observation) -> Verdict:
    problems = []
    for name, expected in rule.values.items():
        value = obs.state.get(name)
        if value is None or value.status is StateStatus.MISSING:
            problems.append(f"{name} is not defined after the run")
        elif value.status is StateStatus.UNSERIALIZABLE:
            problems.append(f"{name} is not plain data ({value.type}): {value.reason}")
        elif not json_equal(value.value, expected):
            problems.append(f"{name} is {json.dumps(value.value)}, expected {json.dumps(expected)}")
    if not problems:
        return passing("every value matches")
    if obs.child_report is not ChildReportStatus.OK:
        problems.append(f"no state report ({obs.child_report.value})")
    exc = failing_exception(obs)
    if exc is not None:
        problems.append(f"the run raised {exc.type}: {exc.message}")
    return failing("; ".join(problems))


def _group_reported(obs: Observation) -> dict[str, list[TestResult]]:
    """Reported tests by node id without the parametrization: ``file.py::Class::test``.

    ``test_hidden.py::test_double[1]`` and ``[2]`` are cases of ``test_hidden.py::test_double``.
    """
    grouped: dict[str, list[TestResult]] = {}
    for test in obs.tests:
        path, _, rest = test.nodeid.partition("::")
        if rest:
            grouped.setdefault(f"{path}::{rest.split('[', 1)[0]}", []).append(test)
    return grouped


_BAD = (TestOutcome.FAILED, TestOutcome.ERROR)


def _fold(name: str, weight: float, cases: list[TestResult]) -> TestVerdict:
    """One verdict for a test's cases: it passed only if every case and every variation did."""
    many = len(cases) > 1
    subtests = [
        SubtestVerdict(
            name=f"[{case.nodeid.partition('[')[2][:-1]}] {sub.name}" if many else sub.name,
            status=sub.outcome.value,
            message=sub.message,
            output=clip_output(sub.stdout),
        )
        for case in cases
        for sub in case.subtests
    ]
    worst = next((c for c in cases if c.outcome is not TestOutcome.PASSED), None)
    failed_variations = sum(s.status in _BAD for s in subtests)
    shown = worst or cases[0]
    status, message = shown.outcome.value, shown.message
    if worst is None and failed_variations:
        # never a pass with a failed variation, whatever the process claimed
        plural = "s" if failed_variations > 1 else ""
        status, message = "failed", f"contains {failed_variations} failed subtest{plural}"
    ok = status == TestOutcome.PASSED.value
    return TestVerdict(
        name=name,
        status=status,
        points=weight if ok else 0,
        max_points=weight,
        message=message,
        output=clip_output(shown.stdout),
        task_id=cases[0].task_id,
        subtests=tuple(subtests),
    )


def untestable(obs: Observation) -> str | None:
    """Why the learner's code could not be tested at all, or None.

    It does not compile, its import (or the hidden tests' import of it) fails, or pytest's
    collection fails: the whole error, as its first line and where it happened.
    """
    if obs.status is RunStatus.SYNTAX_ERROR:
        info = obs.syntax_error
        if info is None:
            return "SyntaxError"
        return _located(f"{info.type}: {info.message}", info.file, info.line)
    if obs.collection_errors:
        error = obs.collection_errors[0]
        exc = error.exception
        if exc is None:
            lines = [line for line in error.message.splitlines() if line.strip()]
            return lines[0] if lines else "collection failed"
        if exc.type == REMOTE_IMPORT_ERROR:  # where the learner's code failed, not the import
            return _first_line(exc).removeprefix(f"{REMOTE_IMPORT_ERROR}: ")
        return _located(_first_line(exc), exc.file, exc.line)
    if obs.exception is not None and not obs.tests and obs.mode is RunMode.PYTEST:
        return _located(_first_line(obs.exception), obs.exception.file, obs.exception.line)
    return None


REMOTE_IMPORT_ERROR = "grader_harness.rpc.errors.RemoteImportError"
"""The judge's stand-in for the learner's failed import in an isolated run: its message is
the learner's own error, whole (``NameError: name 'x' is not defined (solution.py, line 7)``)."""


def _first_line(exc: ExceptionInfo) -> str:
    message = exc.message.replace(f"{SANDBOX_WORKDIR}/", "")
    first = message.splitlines()[0] if message.strip() else ""
    return f"{exc.type}: {first}" if first else exc.type


def _located(text: str, file: str | None, line: int | None) -> str:
    if file and line:
        return f"{text} ({file}, line {line})"
    return f"{text} ({file})" if file else text


def _tests(rule: TestsExpectation, obs: Observation) -> Verdict:
    expected = rule.expected()
    weights = rule.points_by_test(expected)
    total = sum(weights.values()) or 1.0
    reason = untestable(obs)
    if reason is not None:
        return Verdict(status=VerdictStatus.ERROR, reason=reason, max_points=total)
    reported = _group_reported(obs)
    results = []
    for test in expected:
        name, weight = rule.display_name(test), weights[test.nodeid]
        cases = reported.get(test.nodeid)
        if not cases:
            results.append(
                TestVerdict(
                    name=name,
                    status="not_run",
                    points=0,
                    max_points=weight,
                    message="this test did not run",
                )
            )
            continue
        results.append(_fold(name, weight, cases))
    earned = sum(r.points for r in results)
    all_ok = bool(expected) and earned == total
    if all_ok and (obs.exit_code != 0 or obs.child_report is not ChildReportStatus.OK):
        # Claimed passes that the supervisor's observation contradicts count for nothing.
        return failing(
            "the test report contradicts the process exit status",
            max_points=total,
            tests=tuple(r.model_copy(update={"points": 0}) for r in results),
        )
    fields = {
        "score": earned / total,
        "points": earned,
        "max_points": total,
        "tests": tuple(results),
    }
    if all_ok:
        return passing(f"all {len(expected)} tests passed", **fields)
    missed = [r.name for r in results if r.points == 0]
    reason = f"{len(missed)} of {len(expected)} tests did not pass: {', '.join(missed)}"
    return failing(reason, **fields)
