"""Hidden test files: names, the tests pytest will collect (parsed at load), and points."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from pydantic import ValidationError

from grader.domain.hidden import (
    ExpectedTest,
    TestsExpectation,
    expected_tests,
    file_name_problem,
    is_test_file,
)


def names(files: dict[str, str]) -> list[str]:
    dedented = {name: textwrap.dedent(code) for name, code in files.items()}
    return [t.nodeid for t in expected_tests(dedented)]


def test_test_files_are_named_as_pytest_finds_them() -> None:
    """``test_*.py`` and ``*_test.py`` are test files; helpers and conftest are not."""
    assert [is_test_file(n) for n in ["test_a.py", "lasagna_test.py", "conftest.py"]] == [
        True,
        True,
        False,
    ]
    assert [is_test_file(n) for n in ["helpers.py", "testing.py", "test_a.txt"]] == [
        False,
        False,
        False,
    ]


def test_functions_and_test_classes_are_found() -> None:
    """``test*`` functions, ``Test*`` classes' methods; not classes with ``__init__``."""
    found = names(
        {
            "test_a.py": """
                def test_one(): pass
                async def test_two(): pass
                def helper(): pass
                class TestGroup:
                    def test_x(self): pass
                    def helper(self): pass
                class TestWithInit:
                    def __init__(self): pass
                    def test_never(self): pass
                class TestDisabled:
                    __test__ = False
                    def test_never(self): pass
                class Helper:
                    def test_not_collected(self): pass
                """
        }
    )
    assert found == ["test_a.py::test_one", "test_a.py::test_two", "test_a.py::TestGroup::test_x"]


def test_unittest_classes_of_any_name_are_found_sorted_as_unittest_orders_them() -> None:
    """A TestCase subclass is collected whatever its name; unittest sorts its methods."""
    found = names(
        {
            "lasagna_test.py": """
                import unittest
                from unittest import TestCase
                import unittest as ut

                class LasagnaTest(unittest.TestCase):
                    def test_b(self): pass
                    def test_A(self): pass
                class Direct(TestCase):
                    def test_c(self): pass
                class Aliased(ut.IsolatedAsyncioTestCase):
                    async def test_d(self): pass
                """
        }
    )
    assert found == [
        "lasagna_test.py::LasagnaTest::test_A",
        "lasagna_test.py::LasagnaTest::test_b",
        "lasagna_test.py::Direct::test_c",
        "lasagna_test.py::Aliased::test_d",
    ]


def test_a_helper_base_in_the_hidden_files_makes_a_testcase_and_lends_its_tests() -> None:
    """Through a base class of another hidden module (or this one), inherited tests count."""
    found = names(
        {
            "helpers.py": """
                import unittest

                class Base(unittest.TestCase):
                    def assertDouble(self, a, b): pass

                class WithTests(unittest.TestCase):
                    def test_inherited(self): pass
                """,
            "cards_test.py": """
                import helpers
                from helpers import Base, WithTests as Shared

                class Local(Base):
                    def test_local(self): pass

                class Deeper(Local):
                    def test_deeper(self): pass

                class Through(helpers.WithTests):
                    def test_own(self): pass
                """,
        }
    )
    assert found == [
        "cards_test.py::Shared::test_inherited",  # imported TestCases are collected too
        "cards_test.py::Local::test_local",
        "cards_test.py::Deeper::test_deeper",
        "cards_test.py::Deeper::test_local",
        "cards_test.py::Through::test_inherited",
        "cards_test.py::Through::test_own",
    ]


def test_classes_that_are_not_testcases_need_the_test_prefix() -> None:
    """A base that is not a TestCase does not make its subclasses test classes."""
    found = names(
        {
            "test_a.py": """
                class Mixin:
                    def test_from_mixin(self): pass
                class Checks(Mixin):
                    def test_x(self): pass
                class TestChecks(Mixin):
                    def test_y(self): pass
                """
        }
    )
    # pytest lists the base's tests first
    assert found == ["test_a.py::TestChecks::test_from_mixin", "test_a.py::TestChecks::test_y"]


def test_only_test_files_contribute_tests() -> None:
    """Test functions in a helper module are not collected unless a test file imports them."""
    found = names(
        {
            "helpers.py": "def test_in_helper(): pass\ndef test_shared(): pass\n",
            "test_b.py": "from helpers import test_shared\n",
        }
    )
    assert found == ["test_b.py::test_shared"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x.py", "a Python file is a module name + .py"),
        ("sub/helpers.py", "a Python file is a module name + .py"),
        ("data/.secret", "a data file is a relative path"),
        ("/etc/passwd", "a data file is a relative path"),
        ("__init__.py", "would change how pytest collects"),
        ("pytest.ini", "would change how pytest collects"),
        ("a" * 101, "at most 100 characters"),
    ],
)
def test_bad_file_names_are_refused(name: str, problem: str) -> None:
    """Python files beside the solution, data files in plain folders, no pytest config."""
    assert problem in (file_name_problem(name) or "")


def test_good_file_names_pass() -> None:
    """Helpers, conftest, test files and data files in folders are fine."""
    for name in ["helpers.py", "conftest.py", "a_test.py", "data/cases.json", "d/e/f-1.txt"]:
        assert file_name_problem(name) is None


def expectation(**fields: Any) -> TestsExpectation:
    return TestsExpectation.model_validate(fields)


def test_one_file_of_code_still_works_with_its_names() -> None:
    """``code`` with ``file``: names without the file, as before."""
    rule = expectation(file="lasagna_test.py", code="def test_a(): pass\n")
    assert rule.hidden_files() == {"lasagna_test.py": "def test_a(): pass\n"}
    assert [rule.display_name(t) for t in rule.expected()] == ["test_a"]


def test_several_test_files_name_tests_with_their_file_and_points_resolve() -> None:
    """Points by node id, by an unambiguous name, or by method; display names carry files."""
    rule = expectation(
        files={
            "test_a.py": "def test_same(): pass\nclass TestK:\n    def test_m(self): pass\n",
            "b_test.py": "def test_same(): pass\ndef test_only_b(): pass\n",
        },
        points={"test_a.py::test_same": 2, "test_only_b": 3, "test_m": 4},
    )
    tests = rule.expected()
    assert [rule.display_name(t) for t in tests] == [
        "test_a.py::test_same",
        "test_a.py::TestK::test_m",
        "b_test.py::test_same",
        "b_test.py::test_only_b",
    ]
    assert rule.points_by_test(tests) == {
        "test_a.py::test_same": 2,
        "test_a.py::TestK::test_m": 4,
        "b_test.py::test_same": 1,
        "b_test.py::test_only_b": 3,
    }
    assert rule.test_files() == ["test_a.py", "b_test.py"]
    assert ExpectedTest("a_test.py", "K::t").nodeid == "a_test.py::K::t"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give the hidden tests as code (one file) or as files, not both"),
        (
            {"code": "def test_a(): pass\n", "files": {"test_b.py": "def test_b(): pass\n"}},
            "give the hidden tests as code (one file) or as files, not both",
        ),
        (
            {"file": "test_a.py", "files": {"test_b.py": "def test_b(): pass\n"}},
            "file names the one file of code",
        ),
        ({"files": {"helpers.py": "x = 1\n"}}, "no test file"),
        ({"files": {"test_a.py": "import os\n"}}, "the hidden tests define no test functions"),
        (
            {"files": {"test_a.py": "def test_a(:\n"}},
            "hidden file test_a.py does not compile: ",
        ),
        (
            {"code": "def test_a(): pass\n", "solution_file": "lasagna_test.py"},
            "would be collected as tests",
        ),
        (
            {"code": "def test_a(): pass\n", "solution_file": "conftest.py"},
            "would be collected as tests",
        ),
        (
            {
                "files": {"test_a.py": "def test_a(): pass\n", "helpers.py": ""},
                "solution_file": "helpers.py",
            },
            "helpers.py is also a hidden file",
        ),
        (
            {
                "files": {"test_a.py": "def test_x(): pass\n", "b_test.py": "def test_x(): pass\n"},
                "points": {"test_x": 2},
            },
            "'test_x' names several tests (test_a.py::test_x, b_test.py::test_x); name one",
        ),
        (
            {"code": "def test_a(): pass\n", "points": {"test_b": 1}},
            "points name unknown tests ['test_b']; tests are ['test_a']",
        ),
        ({"files": {"sub/test_a.py": "def test_a(): pass\n"}}, "a Python file is a module"),
        (
            {"files": {"test_a.py": "def test_a(): pass\n", "test_a.py/x.json": "{}"}},
            "'test_a.py/x.json' is inside 'test_a.py', a file",
        ),
    ],
)
def test_bad_expectations_are_refused_with_the_reason(fields: dict[str, Any], message: str) -> None:
    """Each rule of the hidden files is checked when the challenge loads."""
    with pytest.raises(ValidationError) as caught:
        expectation(**fields)
    assert message in str(caught.value)
