"""Learner fixtures imported by hidden tests become judge-side fixtures driving remote code."""

from __future__ import annotations

import functools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grader_harness.rpc.fixtures import describe_fixture

from .conftest import Learner, run_hidden

SOLUTION = textwrap.dedent(
    """
    import pytest

    log = []

    @pytest.fixture
    def numbers():
        log.append("setup")
        yield [1, 2, 3]
        log.append("teardown")

    @pytest.fixture(scope="module", name="base")
    def base_value():
        return 10

    @pytest.fixture
    def total(numbers, base):
        return sum(numbers) + base
    """
)

HIDDEN = textwrap.dedent(
    """
    from solution import base_value, log, numbers, total  # noqa: F401

    def test_numbers(numbers):
        assert numbers == [1, 2, 3]
        assert log == ["setup"]

    def test_total_uses_other_fixtures(total):
        assert total == 16

    def test_teardown_ran():
        assert log == ["setup", "teardown", "setup", "teardown"]

    def test_a_failure_is_a_failure(numbers):
        assert numbers == [1, 2]
    """
)


def test_sync_fixtures_set_up_and_tear_down_remotely(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """Generator and plain fixtures, a renamed one, and fixture arguments all work."""
    learner({"solution.py": SOLUTION})
    result = run_hidden(tmp_path / "judge", HIDDEN)
    assert result.outcomes == {
        "test_numbers": "passed",
        "test_total_uses_other_fixtures": "passed",
        "test_teardown_ran": "passed",
        "test_a_failure_is_a_failure": "failed",
    }, result.messages


def test_pytest_8_3_fixture_wrappers_are_recognised() -> None:
    """pytest 8.3 marks a fixture with ``_pytestfixturefunction`` on a wrapper function."""

    class Marker:
        scope = "module"
        params = None
        autouse = False
        name = None

    class Wrapped:
        def __init__(self, obj: Any) -> None:
            self.obj = obj

    async def client() -> Any:
        yield 1

    client._force_asyncio_fixture = True  # type: ignore[attr-defined]
    client._loop_scope = "module"  # type: ignore[attr-defined]

    @functools.wraps(client)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[int]:
        raise AssertionError("never called")

    wrapper._pytestfixturefunction = Marker()  # type: ignore[attr-defined]
    wrapper.__pytest_wrapped__ = Wrapped(client)  # type: ignore[attr-defined]
    assert describe_fixture(wrapper, lambda obj: {"$handle": 7}) == {
        "name": "client",
        "scope": "module",
        "autouse": False,
        "asyncio": True,
        "loop_scope": "module",
        "kind": "asyncgen",
        "args": [],
        "function": {"$handle": 7},
    }
    assert describe_fixture(client, lambda obj: {}) is None
    assert "grader_harness.rpc.fixtures" in sys.modules
