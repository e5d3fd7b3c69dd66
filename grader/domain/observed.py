"""What a run showed, in words an instructor can act on, for a check that failed.

``validate`` puts this beside a failing check's reason: for output expectations the expected
and the actual output as a unified diff, for the other kinds what was observed (the status,
the exception or syntax error with its line, test outcomes, state values, the output).
"""

from __future__ import annotations

import json

from .challenge import Expectation
from .observation import Observation, RunStatus, StateStatus, TestOutcome, format_summary
from .text import unified_diff
from .verdict import Verdict

MAX_LINES = 40
"""Lines of a description (a long diff or output is cut, saying how much was left out)."""
MAX_LINE_CHARS = 200


def failure_detail(expectation: Expectation, verdict: Verdict) -> str:
    """The diff (output) or the observation (other kinds) behind a failed verdict."""
    obs = verdict.observation
    if obs is None or verdict.passed:
        return ""
    rule = expectation.output
    if rule is not None and obs.status is RunStatus.COMPLETED:
        if rule.match == "regex":
            text = f"expected output matching /{rule.stdout}/; the code printed:\n"
            return _clip(text + (_quoted(obs.stdout.text) or "(nothing)"))
        diff = verdict.diff or unified_diff(rule.stdout, obs.stdout.text)
        if diff:
            return _clip(f"{diff.rstrip(chr(10))}{_also(obs)}")
        # equal texts that still fail (e.g. literals that do not parse): show both verbatim
        return _clip(f"expected {rule.stdout!r}\nactual   {obs.stdout.text!r}")
    if expectation.io is not None and verdict.tests:
        return _clip(_cases(verdict))
    return _clip(describe(obs))


def _cases(verdict: Verdict) -> str:
    """Each case that did not pass: its status and message, then its diff or its output."""
    blocks = []
    for case in verdict.tests:
        if case.status == "passed":
            continue
        lines = [f"{case.name}: {case.status}: {case.message or ''}".rstrip(": ")]
        if case.diff:
            lines.append(case.diff.rstrip("\n"))
        elif case.output:
            lines.append("printed:\n" + _quoted(case.output))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _also(obs: Observation) -> str:
    exc = obs.exception
    return f"\nthe run raised {exc.type}: {exc.message}" if exc is not None else ""


def describe(obs: Observation) -> str:
    """Everything an expectation can compare, one fact per line."""
    lines: list[str] = []
    if obs.status is not RunStatus.COMPLETED:
        lines.append(f"status: {obs.status.value}" + (f" ({obs.error})" if obs.error else ""))
    if obs.syntax_error is not None:
        info = obs.syntax_error
        lines.append(f"{info.type}: {info.message} ({info.file}, line {info.line})")
    if obs.exception is not None:
        exc = obs.exception
        where = f" (line {exc.line})" if exc.line else ""
        lines.append(f"raised {exc.type}: {exc.message}{where}")
    for error in obs.collection_errors:
        about = error.exception
        text = f"{about.type}: {about.message}" if about else error.message
        lines.append(f"collection error in {error.nodeid}: {text}")
    for test in obs.tests:
        when = f" at {test.when}" if test.outcome is TestOutcome.ERROR and test.when else ""
        message = f": {test.message}" if test.message else ""
        lines.append(f"{test.nodeid}: {test.outcome.value}{when}{message}")
    if obs.pytest_summary:
        lines.append(f"pytest: {format_summary(obs.pytest_summary)}")
    for name, value in obs.state.items():
        if value.status is StateStatus.OK:
            lines.append(f"{name} = {json.dumps(value.value)}")
        else:
            reason = f" ({value.reason})" if value.reason else ""
            lines.append(f"{name}: {value.status.value}{reason}")
    for warning in obs.warnings:
        lines.append(f"warning {warning.category}: {warning.message}")
    if obs.exit_code not in (None, 0):
        lines.append(f"exit code {obs.exit_code}")
    printed = _quoted(obs.stdout.text)
    lines.append(f"printed:\n{printed}" if printed else "printed nothing")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return "\n".join(f"  | {line}" for line in text.splitlines())


def _clip(text: str) -> str:
    lines = [
        line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."
        for line in text.splitlines()
    ]
    if len(lines) > MAX_LINES:
        left = len(lines) - MAX_LINES
        lines = [*lines[:MAX_LINES], f"... ({left} more lines)"]
    return "\n".join(lines)
