"""The two workloads: the seed Q1 snippet under pytest, and a tiny script.

Both are built the way the worker builds them (``request_for`` on the loaded challenge), so
the runner variants send exactly what a graded submission sends. The tiny script goes over
HTTP as code for the seed's script-mode challenge: its verdict is ``failed`` (it prints 45,
not the expected line), but the run is the work we measure, and its output is checked.

``bench.isolated`` adds q5 (a ``tests`` challenge, its reference solution as the learner's
code) built both ways: isolated (judge and learner containers) and in-process.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from grader.domain import Challenge, Expectation, RunMode, RunRequest
from grader.domain.environment import discover
from grader.domain.grading import request_for
from grader.domain.loader import load_challenges
from grader.settings import Settings

ENVIRONMENT = "fastapi-0.115-httpx-0.27"
Q1_ID = "async-test-mastery/q1-async-test-output"
SCRIPT_CHALLENGE_ID = "fastapi-async-testing/q1-status-codes-script-output"
Q1_MARKER = "{'message': 'Hello, async!'}"
TINY_SCRIPT = "print(sum(range(10)))\n"
Q5_ID = "fastapi-async-testing/q5-write-the-items-endpoints"


@dataclass(frozen=True)
class Workload:
    """One snippet, and how each variant runs and checks it."""

    key: str
    label: str
    mode: RunMode
    code: str
    request: RunRequest
    challenge_id: str
    expected_stdout: str
    exact: bool
    """Whether stdout must equal ``expected_stdout`` (script) or only contain it (pytest)."""

    def stdout_ok(self, stdout: str) -> bool:
        if self.exact:
            return stdout == self.expected_stdout
        return self.expected_stdout in stdout


def load_workloads(settings: Settings | None = None) -> list[Workload]:
    """Q1 from the seed challenge file and the tiny script, in that order."""
    settings = settings or Settings()
    environments = discover(settings.images.root)
    challenges = {
        c.qualified_id: c for c in load_challenges([settings.api.challenges_root], environments)
    }
    q1 = challenges[Q1_ID]
    if q1.code is None or q1.environment != ENVIRONMENT:
        raise RuntimeError(f"{Q1_ID} changed: no code, or not in {ENVIRONMENT}")
    script = challenges[SCRIPT_CHALLENGE_ID]
    return [
        Workload(
            key="q1",
            label="Q1 (pytest)",
            mode=RunMode.PYTEST,
            code=q1.code,
            request=request_for(q1, q1.code, q1.expectation_for(ENVIRONMENT)),
            challenge_id=Q1_ID,
            expected_stdout=Q1_MARKER,
            exact=False,
        ),
        Workload(
            key="script",
            label="tiny script",
            mode=RunMode.SCRIPT,
            code=TINY_SCRIPT,
            request=request_for(script, TINY_SCRIPT, script.expectation_for(ENVIRONMENT)),
            challenge_id=SCRIPT_CHALLENGE_ID,
            expected_stdout="45\n",
            exact=True,
        ),
    ]


@dataclass(frozen=True)
class Q5:
    """q5, its reference solution, and the two ways of grading it."""

    challenge: Challenge
    expectation: Expectation
    tests: frozenset[str]
    isolated: Workload
    in_process: Workload


def load_q5(settings: Settings) -> Q5:
    environments = discover(settings.images.root)
    found = {
        c.qualified_id: c for c in load_challenges([settings.api.challenges_root], environments)
    }
    challenge = found[Q5_ID]
    expectation = challenge.expectation_for(ENVIRONMENT)
    code = challenge.code
    if code is None or expectation is None or expectation.tests is None:
        raise RuntimeError(f"{Q5_ID} changed: no reference solution or no hidden tests")
    tests = frozenset(expectation.tests.points)  # q5 weighs each of its tests by name
    if not tests:
        raise RuntimeError(f"{Q5_ID} changed: its hidden tests have no points by name")

    def workload(isolated: bool) -> Workload:
        return Workload(
            key="q5" if isolated else "q5-in-process",
            label="q5 isolated" if isolated else "q5 in-process",
            mode=challenge.mode,
            code=code,
            request=request_for(challenge, code, expectation, isolated=isolated),
            challenge_id=Q5_ID,
            expected_stdout="",  # the verdict is checked instead (q5_problem)
            exact=False,
        )

    return Q5(challenge, expectation, tests, workload(True), workload(False))


def q5_problem(verdict: Mapping[str, Any], expected: Collection[str]) -> str | None:
    """Why ``verdict`` (a Verdict as JSON) is not a pass of exactly ``expected``; None if it is."""
    status = verdict.get("status")
    if status != "passed":
        return f"verdict {status}: {str(verdict.get('reason', ''))[:200]}"
    tests = verdict.get("tests") or []
    outcomes: dict[str, str] = {}
    for test in tests:
        name = str(test.get("name"))
        if name in outcomes:
            return f"test reported twice: {name}"
        outcomes[name] = str(test.get("status"))
    missing = sorted(set(expected) - set(outcomes))
    if missing:
        return f"tests missing: {', '.join(missing)}"
    unexpected = sorted(set(outcomes) - set(expected))
    if unexpected:
        return f"tests not expected: {', '.join(unexpected)}"
    failed = [f"{name}={outcome}" for name, outcome in outcomes.items() if outcome != "passed"]
    if failed:
        return f"tests not passed: {', '.join(sorted(failed))}"
    return None
