"""Variations, task markers, several test files and conftest failures in the child's report.

Each case runs the harness's child in a fresh interpreter of this virtualenv (pytest 9.2, whose
subtests are built in); ``tests/integration/test_instructor_suites.py`` checks the same reports
from pytest 8.3, where the harness supplies them, in the environment image.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from grader.domain import Limits, RunMode, RunRequest
from grader.sandbox import protocol as worker_protocol

HARNESS = Path(__file__).resolve().parents[2] / "images" / "harness"
sys.path.insert(0, str(HARNESS))

from grader_harness import child  # noqa: E402
from grader_harness import protocol as harness_protocol  # noqa: E402

DRIVER = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from grader_harness import child

folder, out, paths = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
files = frozenset(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".py"))
report, status = child.run_pytest(
    os.path.join(folder, paths[0]), files, [], lambda: None, None, [],
    child.option_paths({"paths": paths}, folder) if len(paths) > 1 else [],
)
with open(out, "w") as handle:
    json.dump({"report": report, "status": status}, handle)
"""


def run_files(tmp_path: Path, files: dict[str, str]) -> tuple[dict[str, Any], int]:
    """The child's report and exit status for the test files among ``files``."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    paths = [n for n in files if n.startswith("test_") or n.endswith("_test.py")]
    out = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-c", DRIVER, str(HARNESS), str(folder), str(out), json.dumps(paths)],
        cwd=folder,
        env={
            **os.environ,
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTEST_PLUGINS": "pytest_asyncio.plugin,anyio.pytest_plugin",
        },
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = json.loads(out.read_text())
    return result["report"], result["status"]


def named(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["nodeid"].split("::", 1)[1]: t for t in report["tests"]}


UNITTEST_SUBTESTS = """
import unittest


class Years(unittest.TestCase):
    def test_years(self):
        print("start")
        for year in (1996, 1900, 2000):
            with self.subTest("leap", year=year):
                print("checking", year)
                self.assertTrue(year % 4 == 0 and year != 1900)

    def test_all_pass(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertLess(i, 2)
"""


def test_a_failing_subtest_fails_its_unittest_test_and_each_variation_is_reported(
    tmp_path: Path,
) -> None:
    """pytest 9 reports variations but passes the test: the harness fails it, exit status 1."""
    report, status = run_files(tmp_path, {"test_years.py": UNITTEST_SUBTESTS})
    tests = named(report)
    years = tests["Years::test_years"]
    assert (years["outcome"], years["message"]) == ("failed", "contains 1 failed subtest")
    assert [(s["name"], s["outcome"], s["stdout"]) for s in years["subtests"]] == [
        ("[leap] (year=1996)", "passed", "checking 1996\n"),
        ("[leap] (year=1900)", "failed", "checking 1900\n"),
        ("[leap] (year=2000)", "passed", "checking 2000\n"),
    ]
    assert years["subtests"][1]["message"] == "AssertionError: False is not true"
    assert years["stdout"] == "start\nchecking 1996\nchecking 1900\nchecking 2000\n"
    passing = tests["Years::test_all_pass"]
    assert passing["outcome"] == "passed"
    assert [s["name"] for s in passing["subtests"]] == ["(i=0)", "(i=1)"]
    assert status == 1
    assert report["summary"] == {"failed": 2, "passed": 1}


def test_the_subtests_fixture_reports_each_variation(tmp_path: Path) -> None:
    """pytest's subtests: every variation runs; a test without msg or values is (<subtest>)."""
    report, status = run_files(
        tmp_path,
        {
            "test_fixture.py": """
                def test_values(subtests):
                    for i in range(3):
                        with subtests.test(i=i):
                            print("value", i)
                            assert i != 1
                    with subtests.test():
                        pass
                """
        },
    )
    values = named(report)["test_values"]
    assert (values["outcome"], values["message"]) == ("failed", "contains 1 failed subtest")
    assert [(s["name"], s["outcome"], s["stdout"]) for s in values["subtests"]] == [
        ("(i=0)", "passed", "value 0\n"),
        ("(i=1)", "failed", "value 1\n"),
        ("(i=2)", "passed", "value 2\n"),
        ("(<subtest>)", "passed", ""),
    ]
    assert values["subtests"][1]["message"] == "assert 1 != 1"
    assert status == 1


def test_variations_kept_per_test_are_capped(tmp_path: Path) -> None:
    """A test with more variations than the cap keeps the first ones, and still fails."""
    cap = harness_protocol.MAX_SUBTESTS
    report, _ = run_files(
        tmp_path,
        {
            "test_many.py": f"""
                def test_many(subtests):
                    for i in range({cap + 5}):
                        with subtests.test(i=i):
                            assert i < {cap + 2}
                """
        },
    )
    many = named(report)["test_many"]
    assert len(many["subtests"]) == cap
    assert (many["outcome"], many["message"]) == ("failed", "contains 3 failed subtests")


def test_the_worker_and_the_harness_agree_on_the_variations_cap() -> None:
    """The worker refuses a report with more variations than the harness ever sends."""
    assert worker_protocol.MAX_SUBTESTS == harness_protocol.MAX_SUBTESTS


def test_task_markers_are_registered_and_carried(tmp_path: Path) -> None:
    """``task(taskno=N)`` on a test, a class or a module; anything but an int is no task."""
    report, status = run_files(
        tmp_path,
        {
            "test_tasks.py": """
                import pytest

                pytestmark = pytest.mark.task(taskno=9)


                @pytest.mark.task(taskno=1)
                @pytest.mark.parametrize("x", [1, 2])
                def test_one(x):
                    pass


                @pytest.mark.task(taskno=2)
                class TestTwo:
                    def test_a(self):
                        pass

                    @pytest.mark.task(3)
                    def test_b(self):
                        pass


                def test_module_task():
                    pass


                @pytest.mark.task(taskno="4")
                def test_not_a_number():
                    pass
                """
        },
    )
    assert {name: t["task_id"] for name, t in named(report).items()} == {
        "test_one[1]": 1,
        "test_one[2]": 1,
        "TestTwo::test_a": 2,
        "TestTwo::test_b": 3,
        "test_module_task": 9,
        "test_not_a_number": None,
    }
    assert report["warnings"] == []
    assert status == 0


def test_several_test_files_and_a_conftest_run_together(tmp_path: Path) -> None:
    """The run's paths: both test files run, with the instructor's conftest fixture."""
    report, status = run_files(
        tmp_path,
        {
            "conftest.py": """
                import pytest


                @pytest.fixture
                def answer():
                    return 42
                """,
            "test_first.py": "def test_a(answer):\n    assert answer == 42\n",
            "second_test.py": "def test_a():\n    pass\n",
        },
    )
    assert [(t["nodeid"], t["outcome"]) for t in report["tests"]] == [
        ("test_first.py::test_a", "passed"),
        ("second_test.py::test_a", "passed"),
    ]
    assert status == 0


def test_a_conftest_that_cannot_import_is_a_collection_error(tmp_path: Path) -> None:
    """pytest stops before collecting: the conftest's error is reported with its place."""
    report, status = run_files(
        tmp_path,
        {
            "solution.py": "value = 1\n",
            "conftest.py": "from solution import missing\n",
            "test_x.py": "def test_x():\n    pass\n",
        },
    )
    assert status == 4
    assert report["tests"] == []
    (error,) = report["collection_errors"]
    assert error["nodeid"] == "conftest.py"
    exception = error["exception"]
    assert (exception["type"], exception["file"], exception["line"]) == (
        "ImportError",
        "conftest.py",
        1,
    )
    assert exception["message"].startswith("cannot import name 'missing' from 'solution'")


def test_run_option_paths_are_plain_names_in_the_work_directory() -> None:
    """Only plain file names are taken from the options; anything else runs the entry."""
    assert child.option_paths({"paths": ["a_test.py", "test_b.py"]}, "/w") == [
        "/w/a_test.py",
        "/w/test_b.py",
    ]
    assert child.option_paths({"paths": ["../etc/x.py"]}, "/w") == []
    assert child.option_paths({"paths": [".hidden.py"]}, "/w") == []
    assert child.option_paths({"paths": "test_a.py"}, "/w") == []
    assert child.option_paths({}, "/w") == []


def test_the_submission_line_names_every_test_file_in_the_run_options() -> None:
    """Several test files travel in the options file the child reads and removes first."""
    request = RunRequest(
        mode=RunMode.PYTEST,
        files={"a_test.py": "", "test_b.py": ""},
        entry="a_test.py",
        test_files=("a_test.py", "test_b.py"),
    )
    line = worker_protocol.HarnessSubmission.of(request, Limits())
    options = json.loads(line.files[worker_protocol.OPTIONS_FILE])
    assert options == {"paths": ["a_test.py", "test_b.py"]}
    single = RunRequest(mode=RunMode.PYTEST, files={"test_a.py": ""}, entry="test_a.py")
    assert (
        worker_protocol.OPTIONS_FILE
        not in worker_protocol.HarnessSubmission.of(single, Limits()).files
    )
