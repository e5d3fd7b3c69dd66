"""Comparing what pytest reported, and the warnings a run showed, with what a challenge expects.

Pure functions beside ``compare.py``, which dispatches here for ``outcome`` expectations and
for the ``warnings`` of any expectation. Outcomes, reasons, warnings and pytest's summary
counts are claims of the snippet's process; the summary is cross-checked against the exit
status the supervisor observed (pytest exits 0, or 5 when nothing was collected, exactly when
nothing failed or errored).
"""

from __future__ import annotations

from .challenge import ExceptionExpectation, OutcomeExpectation, TestOutcomeRule, WarningRule
from .observation import (
    ChildReportStatus,
    ExceptionInfo,
    Observation,
    WarningInfo,
    format_summary,
    parse_summary,
)
from .verdict import Verdict, failing, passing


def type_matches(expected: str, actual: str) -> bool:
    """A type name matches itself or the end of a qualified name after a dot."""
    return actual == expected or actual.endswith("." + expected)


def exception_problem(rule: ExceptionExpectation, exc: ExceptionInfo) -> str | None:
    """Why ``exc`` does not meet ``rule`` (type, then message, then line), or None."""
    if not type_matches(rule.type, exc.type):
        return f"expected {rule.type}, got {exc.type}: {exc.message}"
    if rule.message is not None and not rule.message.matches(exc.message):
        return f"{exc.type} message {exc.message!r} is not {rule.message.describe()}"
    if rule.line is not None and exc.line != rule.line:
        return f"{exc.type} raised at line {exc.line}, expected line {rule.line}"
    return None


# pytest outcomes ------------------------------------------------------------------------------


def observed_summary(obs: Observation) -> dict[str, int]:
    """The run's pytest summary counts, without zeros."""
    return {key: count for key, count in obs.pytest_summary.items() if count}


def outcome_verdict(rule: OutcomeExpectation, obs: Observation) -> Verdict:
    """Every rule of an ``outcome`` expectation; the reason lists each one that fails."""
    if obs.child_report is not ChildReportStatus.OK:
        return failing(
            f"no pytest report ({obs.child_report.value}): "
            f"{obs.child_report_error or 'the run ended early'}"
        )
    counts = observed_summary(obs)
    summary = format_summary(counts)
    if (counts.get("failed", 0) + counts.get("error", 0) > 0) != (obs.exit_code not in (0, 5)):
        return failing(f"the pytest report ({summary}) contradicts the exit status {obs.exit_code}")
    problems = [_collection_problem(rule.collection_error, obs)] if rule.collection_error else []
    for name, test_rule in rule.tests.items():
        problems += _test_problems(name, test_rule, obs)
    if rule.summary is not None and counts != parse_summary(rule.summary):
        problems.append(f"pytest reported '{summary}', expected '{rule.summary}'")
    found = [problem for problem in problems if problem]
    return failing("; ".join(found)) if found else passing(f"pytest reported {summary}")


def _collection_problem(rule: ExceptionExpectation, obs: Observation) -> str | None:
    """One collection error must be ``rule``'s; None when one is."""
    if not obs.collection_errors:
        return f"expected a collection error ({rule.type}), but collection succeeded"
    errors = [c.exception for c in obs.collection_errors if c.exception is not None]
    problems = [exception_problem(rule, exc) for exc in errors]
    if None in problems:
        return None
    last_line = obs.collection_errors[0].message.strip().splitlines()[-1:] or ["?"]
    return f"collection error: {problems[0] if problems else last_line[0]}"


def short_name(nodeid: str) -> str:
    """``test_snippet.py::TestX::test_y[1]`` is ``TestX::test_y[1]``."""
    return nodeid.partition("::")[2]


def _test_problems(name: str, rule: TestOutcomeRule, obs: Observation) -> list[str]:
    """Each reported case of ``name`` must have the outcome (and phase, message) expected."""
    cases = [t for t in obs.tests if name in (short_name(t.nodeid), _base(t.nodeid))]
    if not cases:
        return [f"{name} was not reported" + ("; collection failed" * bool(obs.collection_errors))]
    problems = []
    for test in cases:
        label, outcome = short_name(test.nodeid), test.outcome.value
        if outcome != rule.outcome:
            said = f": {test.message}" if test.message else ""
            problems.append(f"{label} {outcome}{said}; expected {rule.outcome}")
        elif rule.when is not None and test.when != rule.when:
            problems.append(f"{label} {outcome} at {test.when}, expected at {rule.when}")
        elif rule.message is not None and not rule.message.matches(test.message or ""):
            problems.append(f"{label} {outcome}: {test.message!r} is not {rule.message.describe()}")
    return problems


def _base(nodeid: str) -> str:
    return short_name(nodeid).split("[", 1)[0]


# warnings -------------------------------------------------------------------------------------


def warning_matches(rule: WarningRule, warning: WarningInfo) -> bool:
    """Every field the rule sets matches the warning."""
    return (
        (rule.category is None or type_matches(rule.category, warning.category))
        and (rule.message is None or rule.message.matches(warning.message))
        and (rule.line is None or warning.line == rule.line)
    )


def warnings_problem(rules: tuple[WarningRule, ...], obs: Observation) -> str | None:
    """Why the run's warnings do not meet ``rules`` (the first rule that fails), or None."""
    if obs.child_report is not ChildReportStatus.OK:
        return f"no warnings report ({obs.child_report.value})"
    for rule in rules:
        found = [w for w in obs.warnings if warning_matches(rule, w)]
        if rule.absent and found:
            where = f" at line {found[0].line}" if found[0].line else ""
            return f"unexpected {found[0].category}: {found[0].message}{where}"
        if not rule.absent and not found:
            wanted = rule.category or "warning"
            wanted += f" {rule.message.describe()}" if rule.message else ""
            wanted += f" at line {rule.line}" if rule.line else ""
            shown = "; ".join(f"{w.category}: {w.message}" for w in obs.warnings[:3])
            return f"no {wanted} (warnings: {shown or 'none'})"
    return None
