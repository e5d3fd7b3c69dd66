"""The two workloads: the seed Q1 snippet under pytest, and a tiny script.

Both are built the way the worker builds them (``request_for`` on the loaded challenge), so
the runner variants send exactly what a graded submission sends. The tiny script goes over
HTTP as code for the seed's script-mode challenge: its verdict is ``failed`` (it prints 45,
not the expected line), but the run is the work we measure, and its output is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.domain import RunMode, RunRequest
from grader.domain.environment import discover
from grader.domain.grading import request_for
from grader.domain.loader import load_challenges
from grader.settings import Settings

ENVIRONMENT = "fastapi-0.115-httpx-0.27"
Q1_ID = "async-test-mastery/q1-async-test-output"
SCRIPT_CHALLENGE_ID = "fastapi-async-testing/q1-status-codes-script-output"
Q1_MARKER = "{'message': 'Hello, async!'}"
TINY_SCRIPT = "print(sum(range(10)))\n"


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
