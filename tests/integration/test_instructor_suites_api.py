"""The instructor-suites set graded through the API: HTTP -> Redis -> a real worker -> Docker.

Each challenge's reference solution passes; wrong answers show the
suites as instructors meet them: partly failing, all failing, failing variations, output,
task numbers, and code that cannot be tested (a missing name, a syntax error, an exception
at import) as the verdict ``error`` with the whole error. Submissions run in the set's
environment (pytest 8); ``test_instructor_suites.py`` runs the same answers in both.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from grader.testing import ADMIN_KEY, WorkerProcess
from tests.conftest import OLD_ENV
from tests.integration.test_api_e2e import submit_and_wait

pytestmark = pytest.mark.docker
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

SET = "instructor-suites"
FOLDER = Path(__file__).resolve().parents[2] / "challenges" / SET
NAMES = sorted(path.stem for path in FOLDER.glob("*.yaml"))


def reference(name: str) -> str:
    data: dict[str, Any] = yaml.safe_load((FOLDER / f"{name}.yaml").read_text())
    code: str = data["code"]
    return code


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


async def grade(api: httpx.AsyncClient, name: str, answer: str) -> dict[str, Any]:
    """The stored result of one answer, graded in the challenge's environment (pytest 8), read
    whole by an admin key (a submitter's copy keeps expected values out while attempts
    remain: tests/integration/test_quiz_e2e.py)."""
    submitted = await submit_and_wait(api, {"challenge_id": f"{SET}/{name}", "code": answer})
    whole = await api.get(f"/v1/submissions/{submitted['id']}", headers=ADMIN)
    submission = whole.json()
    assert submission["status"] == "done", submission
    result: dict[str, Any] = submission["result"]
    assert result["environment"]["name"] == OLD_ENV
    return result


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {test["name"]: test for test in result["tests"]}


def test_the_set_is_there() -> None:
    """The set holds at least the eight suites the issue asks for."""
    assert len(NAMES) >= 8


@pytest.mark.asyncio
@pytest.mark.parametrize("name", NAMES)
async def test_the_reference_solution_passes(
    api: httpx.AsyncClient, worker_process: WorkerProcess, name: str
) -> None:
    """Each suite passes against its reference solution, every test run and passed."""
    result = await grade(api, name, reference(name))
    assert result["status"] == "passed", result["reason"]
    assert result["score"] == 1.0
    assert result["tests"]
    assert {test["status"] for test in result["tests"]} == {"passed"}


@pytest.mark.asyncio
async def test_a_unittest_suite_carries_task_numbers_and_partial_points(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A *Test unittest class in lasagna_test.py: each test's task, points for the right ones."""
    right = await grade(api, "q1-lasagna-unittest", reference("q1-lasagna-unittest"))
    assert [(t["name"], t["task_id"]) for t in right["tests"]] == [
        ("LasagnaTest::test_EXPECTED_BAKE_TIME", 1),
        ("LasagnaTest::test_bake_time_remaining", 2),
        ("LasagnaTest::test_elapsed_time_in_minutes", 4),
        ("LasagnaTest::test_preparation_time_in_minutes", 3),
    ]
    wrong = await grade(
        api,
        "q1-lasagna-unittest",
        reference("q1-lasagna-unittest").replace("PREPARATION_TIME = 2", "PREPARATION_TIME = 3"),
    )
    assert wrong["status"] == "failed"
    assert (wrong["points"], wrong["max_points"]) == (2.0, 5.0)
    assert wrong["score"] == pytest.approx(0.4)
    tests = by_name(wrong)
    assert tests["LasagnaTest::test_preparation_time_in_minutes"]["status"] == "failed"
    assert tests["LasagnaTest::test_preparation_time_in_minutes"]["message"] == (
        "AssertionError: 9 != 6"
    )
    assert tests["LasagnaTest::test_elapsed_time_in_minutes"]["task_id"] == 4
    assert tests["LasagnaTest::test_bake_time_remaining"]["status"] == "passed"


@pytest.mark.asyncio
async def test_a_missing_name_is_an_error_with_the_whole_message(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A solution without a name the tests import cannot be tested: error, no tests."""
    answer = reference("q1-lasagna-unittest").split("def elapsed_time_in_minutes")[0]
    result = await grade(api, "q1-lasagna-unittest", answer)
    assert result["status"] == "error"
    assert result["tests"] == []
    assert (result["score"], result["max_points"]) == (0.0, 5.0)
    assert result["reason"] == (
        "ImportError: cannot import name 'elapsed_time_in_minutes' from 'lasagna' "
        "(lasagna.py) (lasagna_test.py, line 5)"
    )


@pytest.mark.asyncio
async def test_a_syntax_error_is_an_error_with_its_place(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A solution that does not compile: error, with the compiler's message, file and line."""
    answer = reference("q1-lasagna-unittest").replace(
        "def bake_time_remaining(elapsed_bake_time):", "def bake_time_remaining(elapsed_bake_time)"
    )
    result = await grade(api, "q1-lasagna-unittest", answer)
    assert result["status"] == "error"
    assert result["tests"] == []
    assert result["reason"] == "SyntaxError: expected ':' (lasagna.py, line 5)"


@pytest.mark.asyncio
async def test_an_exception_at_import_is_an_error(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A solution that raises while imported (through a hidden helper module): error."""
    answer = 'raise RuntimeError("not written yet")\n' + reference("q6-helper-base-class")
    result = await grade(api, "q6-helper-base-class", answer)
    assert result["status"] == "error"
    assert result["tests"] == []
    assert result["reason"] == "RuntimeError: not written yet (cards.py, line 1)"


@pytest.mark.asyncio
async def test_a_conftest_that_cannot_import_the_solution_is_an_error(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """The instructor's conftest.py imports the app: a solution without it is an error."""
    answer = reference("q8-fastapi-suite").replace("app = FastAPI()", "application = FastAPI()")
    answer = answer.replace("@app.", "@application.")
    result = await grade(api, "q8-fastapi-suite", answer)
    assert result["status"] == "error"
    assert result["tests"] == []
    assert result["reason"] == (
        "ImportError: cannot import name 'app' from 'main' (main.py) (conftest.py, line 4)"
    )


@pytest.mark.asyncio
async def test_subtest_variations_are_reported_and_fail_their_test(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """unittest subTest: each year is a variation; the test fails with any failed variation."""
    answer = code("""
        def leap_year(year):
            return year % 4 == 0
        """)
    result = await grade(api, "q2-leap-subtests", answer)
    assert result["status"] == "failed"
    assert result["score"] == 0.5
    tests = by_name(result)
    assert tests["LeapYearCases::test_ordinary_years"]["status"] == "passed"
    centuries = tests["LeapYearCases::test_centuries"]
    assert centuries["status"] == "failed"
    assert centuries["points"] == 0
    assert centuries["message"] == "contains 2 failed subtests"
    assert [(s["name"], s["status"]) for s in centuries["subtests"]] == [
        ("[century] (year=1900)", "failed"),
        ("[century] (year=2000)", "passed"),
        ("[century] (year=2100)", "failed"),
        ("[century] (year=2400)", "passed"),
    ]
    assert centuries["subtests"][0]["message"] == "AssertionError: True is not False"


@pytest.mark.asyncio
async def test_pytest_subtests_report_each_variation_with_its_output(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """pytest's subtests fixture, in pytest 8 and 9 alike: a status and output per variation."""
    answer = code("""
        def normalize(name):
            return name.strip().lower()
        """)
    result = await grade(api, "q3-pytest-subtests", answer)
    assert result["status"] == "failed"
    tests = by_name(result)
    assert tests["test_idempotent"]["status"] == "passed"
    normalize = tests["test_normalize"]
    assert normalize["status"] == "failed"
    assert normalize["message"] == "contains 2 failed subtests"
    assert [(s["name"], s["status"], s["output"]) for s in normalize["subtests"]] == [
        ("[normalize] (raw='ada')", "passed", "normalize('ada')\n"),
        ("[normalize] (raw='  Ada  Lovelace ')", "failed", "normalize('  Ada  Lovelace ')\n"),
        ("[normalize] (raw='GRACE hopper')", "failed", "normalize('GRACE hopper')\n"),
    ]
    message = normalize["subtests"][2]["message"]
    # pytest keeps "AssertionError: " when the message's repr is in double quotes
    assert message.splitlines()[0] == "AssertionError: assert 'grace hopper' == 'grace_hopper'"


@pytest.mark.asyncio
async def test_several_files_name_their_tests_by_file(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Two test files with a test of the same name, a helper, a conftest fixture, data."""
    answer = code("""
        def total(items):
            return sum(item["price"] for item in items)


        def apply_discount(amount, percent):
            return round(amount * (100 - percent) / 100, 2)
        """)
    result = await grade(api, "q4-several-files", answer)
    assert result["status"] == "failed"
    assert [(t["name"], t["status"], t["points"]) for t in result["tests"]] == [
        ("test_total.py::test_empty", "passed", 1.0),
        ("test_total.py::test_groceries", "failed", 0.0),
        ("test_total.py::test_quantities", "failed", 0.0),
        ("discount_test.py::test_empty", "passed", 1.0),
        ("discount_test.py::test_ten_percent", "passed", 1.0),
        ("discount_test.py::test_out_of_range", "failed", 0.0),
    ]
    assert (result["points"], result["max_points"]) == (3.0, 8.0)


@pytest.mark.asyncio
async def test_all_failing_tests_keep_their_output_capped(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Every test fails; what each printed comes back, cut at 500 characters with a marker."""
    answer = code("""
        def receipt(items):
            return "".join(f"{name} {price}\\n" for name, price in items)
        """)
    result = await grade(api, "q5-test-output", answer)
    assert result["status"] == "failed"
    assert (result["score"], result["points"]) == (0.0, 0.0)
    tests = by_name(result)
    assert [t["status"] for t in result["tests"]] == ["failed", "failed"]
    assert tests["test_one_item"]["output"] == "tea 2.5\n"
    printed = "".join(f"item{i} {float(i)}\n" for i in range(60))
    assert len(printed) > 500
    assert tests["test_many_items"]["output"] == (
        printed[:500] + "\n[output truncated to 500 characters]"
    )


@pytest.mark.asyncio
async def test_task_markers_reach_parametrized_and_class_tests(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Module, class and parametrized tests each carry their task; a wrong task-2 answer."""
    answer = reference("q7-tasks-parametrized").replace(
        "(fahrenheit - 32) * 5 / 9", "fahrenheit - 32"
    )
    result = await grade(api, "q7-tasks-parametrized", answer)
    assert result["status"] == "failed"
    assert [(t["name"], t["status"], t["task_id"]) for t in result["tests"]] == [
        ("test_to_fahrenheit", "passed", 1),
        ("test_to_celsius", "failed", 2),
        ("TestDescribe::test_freezing", "passed", 3),
        ("TestDescribe::test_mild", "passed", 3),
        ("TestDescribe::test_hot", "passed", 3),
    ]
