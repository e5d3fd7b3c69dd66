"""The learner's container of an isolated run pre-imports what the learner's files need.

A solution that imports FastAPI but not pytest is served from a ``serve`` container: the
environment's packages without pytest, so pytest is not in the learner's process unless the
solution imports it (then ``full``, which pre-imports it).
"""

from __future__ import annotations

import textwrap

import pytest

from grader.domain import Limits, VerdictStatus
from grader.domain.challenge import Expectation
from grader.domain.compare import compare
from grader.domain.grading import request_for
from grader.domain.hidden import TestsExpectation
from grader.sandbox import PreimportProfile
from tests.conftest import OLD_ENV, Runner
from tests.security.test_cant_forge_hidden_tests import PLAIN

pytestmark = pytest.mark.docker

TESTS = textwrap.dedent("""
    from solution import loaded


    def test_fastapi_is_there_and_pytest_is_not():
        assert loaded() == {"fastapi": True, "pytest": False}
""")
SERVED = textwrap.dedent("""
    import sys

    from fastapi import FastAPI

    app = FastAPI()


    def loaded():
        return {name: name in sys.modules for name in ("fastapi", "pytest")}
""")
CHALLENGE = PLAIN.model_copy(
    update={"expectation": Expectation(tests=TestsExpectation(code=TESTS))}
)


@pytest.mark.parametrize(
    ("code", "profile", "status"),
    [
        (SERVED, PreimportProfile.SERVE, VerdictStatus.PASSED),
        ("import pytest\n" + SERVED, PreimportProfile.FULL, VerdictStatus.FAILED),
    ],
)
def test_pytest_is_in_the_learners_process_only_when_the_learner_imports_it(
    run: Runner, code: str, profile: PreimportProfile, status: VerdictStatus
) -> None:
    """``serve`` leaves pytest out of the learner's process; a solution importing it gets it."""
    expectation = CHALLENGE.expectation_for(OLD_ENV)
    assert expectation is not None
    request = request_for(CHALLENGE, code, expectation)
    assert request.learner is not None
    assert run.sandbox.learner_profile(OLD_ENV, request.learner.files) is profile
    try:
        observation = run.sandbox.run(OLD_ENV, request, Limits(wall_seconds=10))
    finally:
        run.sandbox.drain_removals()
    verdict = compare(CHALLENGE.kind, expectation, observation)
    assert verdict.status is status, verdict.tests
