"""The instructor-suites set's wrong answers in both environment images, through the sandbox.

pytest 9.2 (``fastapi-0.165-httpx-0.28``) reports subtests itself; pytest 8.3 gets them from
the harness. Each answer here is graded with ``compare`` as the worker would, in each
environment, and must give the same verdict in both.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.domain import Limits, Verdict, VerdictStatus
from grader.domain.compare import compare
from grader.domain.grading import request_for
from grader.domain.loader import load_challenges
from tests.conftest import NEW_ENV, OLD_ENV, Runner

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
CHALLENGES = {
    c.id: c
    for c in load_challenges([ROOT / "challenges" / "instructor-suites"], [OLD_ENV, NEW_ENV])
}
ENVIRONMENTS = [OLD_ENV, NEW_ENV]


def verdict(run: Runner, env: str, name: str, answer: str) -> Verdict:
    """The verdict of ``answer`` for challenge ``name`` in environment ``env``."""
    challenge = CHALLENGES[name]
    expectation = challenge.expectation_for(env)
    assert expectation is not None
    request = request_for(challenge, textwrap.dedent(answer).lstrip("\n"), expectation)
    try:
        observation = run.sandbox.run(env, request, Limits(wall_seconds=10))
    finally:
        run.sandbox.drain_removals()
    return compare(challenge.kind, expectation, observation)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_unittest_subtest_variations_fail_their_test_in_both(run: Runner, env: str) -> None:
    """Each subTest variation is reported; one that fails fails its test (never a pass)."""
    result = verdict(
        run,
        env,
        "q2-leap-subtests",
        """
        def leap_year(year):
            print("year", year)
            return year % 4 == 0
        """,
    )
    assert result.status is VerdictStatus.FAILED
    assert result.score == 0.5
    centuries, ordinary = result.tests  # unittest orders its tests by name
    assert (ordinary.name, ordinary.status) == ("LeapYearCases::test_ordinary_years", "passed")
    assert [(s.name, s.status) for s in ordinary.subtests] == [
        ("(year=2015)", "passed"),
        ("(year=1996)", "passed"),
        ("(year=1970)", "passed"),
    ]
    assert (centuries.status, centuries.points) == ("failed", 0)
    assert centuries.message == "contains 2 failed subtests"
    assert [(s.name, s.status, s.output) for s in centuries.subtests] == [
        ("[century] (year=1900)", "failed", "year 1900\n"),
        ("[century] (year=2000)", "passed", "year 2000\n"),
        ("[century] (year=2100)", "failed", "year 2100\n"),
        ("[century] (year=2400)", "passed", "year 2400\n"),
    ]
    assert centuries.subtests[2].message == "AssertionError: True is not False"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pytest_subtests_are_reported_per_variation_in_both(run: Runner, env: str) -> None:
    """The subtests fixture exists in both; every variation runs and reports its output."""
    result = verdict(
        run,
        env,
        "q3-pytest-subtests",
        """
        def normalize(name):
            return name.strip().lower()
        """,
    )
    assert result.status is VerdictStatus.FAILED
    normalize, idempotent = result.tests
    assert (idempotent.name, idempotent.status, len(idempotent.subtests)) == (
        "test_idempotent",
        "passed",
        3,
    )
    assert normalize.message == "contains 2 failed subtests"
    assert [(s.name, s.status, s.output) for s in normalize.subtests] == [
        ("[normalize] (raw='ada')", "passed", "normalize('ada')\n"),
        ("[normalize] (raw='  Ada  Lovelace ')", "failed", "normalize('  Ada  Lovelace ')\n"),
        ("[normalize] (raw='GRACE hopper')", "failed", "normalize('GRACE hopper')\n"),
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_missing_name_is_an_error_in_both(run: Runner, env: str) -> None:
    """A solution without a name the tests import: error, the whole message, no tests."""
    answer = CHALLENGES["q1-lasagna-unittest"].code or ""
    result = verdict(
        run, env, "q1-lasagna-unittest", answer.split("def elapsed_time_in_minutes")[0]
    )
    assert result.status is VerdictStatus.ERROR
    assert result.tests == ()
    assert result.reason == (
        "ImportError: cannot import name 'elapsed_time_in_minutes' from 'lasagna' "
        "(lasagna.py) (lasagna_test.py, line 5)"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_task_numbers_and_several_files_in_both(run: Runner, env: str) -> None:
    """Task markers and tests of several files come back the same from pytest 8 and 9."""
    tasks = verdict(
        run, env, "q7-tasks-parametrized", CHALLENGES["q7-tasks-parametrized"].code or ""
    )
    assert tasks.status is VerdictStatus.PASSED
    assert [t.task_id for t in tasks.tests] == [1, 2, 3, 3, 3]
    files = verdict(run, env, "q4-several-files", CHALLENGES["q4-several-files"].code or "")
    assert files.status is VerdictStatus.PASSED
    assert [t.name for t in files.tests] == [
        "test_total.py::test_empty",
        "test_total.py::test_groceries",
        "test_total.py::test_quantities",
        "discount_test.py::test_empty",
        "discount_test.py::test_ten_percent",
        "discount_test.py::test_out_of_range",
    ]
    assert files.max_points == 8.0
