"""Grading one submission: load its challenge, run the code in the sandbox, compare.

The comparison happens here, in the worker, outside the container; nothing from the
challenge's expectation is sent into the sandbox except hidden test code.
"""

from __future__ import annotations

from grader.domain import Limits
from grader.domain.challenge import Challenge, Kind
from grader.domain.compare import compare, grade_choice
from grader.domain.sandbox import Sandbox
from grader.domain.submission import Submission
from grader.domain.validation import request_for
from grader.domain.verdict import Verdict, VerdictStatus


def grade(
    submission: Submission, challenge: Challenge, sandbox: Sandbox, limits: Limits
) -> Verdict:
    """The verdict of one submission. Infrastructure failures propagate as exceptions."""
    if submission.choice is not None:
        return grade_choice(challenge, submission.choice)
    if submission.code is None:
        return Verdict(status=VerdictStatus.REJECTED, reason="no code and no choice")
    environment = submission.environment or challenge.environment
    expectation = challenge.expectation_for(environment)
    if challenge.kind is Kind.CONCEPTUAL or expectation is None:
        return Verdict(
            status=VerdictStatus.REJECTED,
            reason=f"{challenge.qualified_id} is answered by choice, not by code",
        )
    request = request_for(challenge, submission.code, expectation)
    observation = sandbox.run(environment, request, limits)
    return compare(challenge.kind, expectation, observation)
