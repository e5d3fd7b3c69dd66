"""The ``io`` kind: stdin cases, each with its expected stdout, match mode and points.

The challenge's code (or a learner's) runs once per case in one container, each case with its
own stdin (``RunRequest.cases``); only the stdins enter the sandbox. Each case is judged here,
outside it, on what the trusted supervisor saw: its stdout, its exit status, its time. A case
passes when its stdout matches and its process exited 0; points add up to partial credit.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .observation import MAX_CASES, CaseRun, Observation, RunStatus
from .text import MatchMode, clip_output, text_matches, unified_diff
from .verdict import RUN_LEVEL, TestVerdict, Verdict, failing, passing


class IoCase(BaseModel):
    """One case: what the program reads, what it must print, how that is compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    stdin: str = ""
    stdout: str
    match: MatchMode = "exact"
    points: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _regex_compiles(self) -> IoCase:
        if self.match == "regex":
            try:
                re.compile(self.stdout, re.DOTALL)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.stdout!r}: {exc}") from None
        return self


class IoExpectation(BaseModel):
    """The cases of an ``io`` challenge, in the order they run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: tuple[IoCase, ...] = Field(min_length=1, max_length=MAX_CASES)

    @model_validator(mode="after")
    def _names_unique(self) -> IoExpectation:
        names = self.names()
        if len(set(names)) != len(names):
            raise ValueError("case names must be unique")
        return self

    def names(self) -> list[str]:
        return [case.name or f"case {index}" for index, case in enumerate(self.cases, 1)]

    def stdins(self) -> tuple[str, ...]:
        """What enters the sandbox: each case's stdin, nothing of what it expects."""
        return tuple(case.stdin for case in self.cases)


def io_verdict(rule: IoExpectation, obs: Observation) -> Verdict:
    """Each case's verdict, and partial credit: the points of the cases that passed."""
    total = sum(case.points for case in rule.cases)
    results = [
        _case(name, case, obs.cases[index] if index < len(obs.cases) else None)
        for index, (name, case) in enumerate(zip(rule.names(), rule.cases, strict=True))
    ]
    earned = sum(result.points for result in results)
    fields = {
        "score": earned / total,
        "points": earned,
        "max_points": total,
        "tests": tuple(results),
        "diff": next((r.diff for r in results if r.diff), None),
    }
    missed = [r for r in results if r.status != "passed"]
    if not missed:
        return passing(f"all {len(results)} cases passed", **fields)
    first = missed[0]
    reason = (
        f"{len(missed)} of {len(results)} cases did not pass: "
        f"{', '.join(r.name for r in missed)} (first: {first.name}: {first.message})"
    )
    return failing(reason, **fields)


def _case(name: str, case: IoCase, run: CaseRun | None) -> TestVerdict:
    base = {"name": name, "max_points": case.points, "points": 0.0}
    if run is None or not run.ran:
        return TestVerdict(status="not_run", message="no time was left for this case", **base)
    timing = {"wall_seconds": run.wall_seconds, "output": clip_output(run.stdout.text)}
    if run.status is not RunStatus.COMPLETED:
        message = f"{run.status.value.replace('_', ' ')}"
        if run.timed_out and run.wall_limit is not None:
            message = f"time limit exceeded (its share: {run.wall_limit:.2f} s)"
        return TestVerdict(status=RUN_LEVEL[run.status].value, message=message, **base, **timing)
    matched = text_matches(case.match, case.stdout, run.stdout.text)
    raised = f"; it raised {run.exception.type}: {run.exception.message}" if run.exception else ""
    if matched and run.exit_code == 0:
        earned = {**base, **timing, "points": case.points}
        return TestVerdict(status="passed", message="output matches", **earned)
    if matched:
        status = run.exit_code if run.exit_code is not None else f"signal {run.signal}"
        message = f"the output matches, but the process exited with status {status}{raised}"
        return TestVerdict(status="failed", message=message, **base, **timing)
    message = f"output does not match ({case.match})"
    if run.stdout.truncated:
        message += "; output was truncated"
    diff = unified_diff(case.stdout, run.stdout.text)
    return TestVerdict(status="failed", message=message + raised, diff=diff, **base, **timing)
