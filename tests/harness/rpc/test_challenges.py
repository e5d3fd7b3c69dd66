"""The fastapi-async-testing set's hidden tests, run judge-side against learner processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .conftest import Learner, run_hidden

CHALLENGES = Path(__file__).resolve().parents[3] / "challenges" / "fastapi-async-testing"


def challenge(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHALLENGES / name).read_text(encoding="utf-8"))
    return loaded


Q5 = challenge("q5-write-the-items-endpoints.yaml")
Q6 = challenge("q6-write-the-override-fixture.yaml")
Q5_TESTS = set(Q5["expectation"]["tests"]["points"])
Q6_TESTS = set(Q6["expectation"]["tests"]["points"])


def test_q5_reference_solution_passes_every_hidden_test(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """The items endpoints, served by a learner process, pass q5's hidden async tests."""
    learner({"solution.py": Q5["code"]})
    result = run_hidden(tmp_path / "judge", Q5["expectation"]["tests"]["code"])
    assert result.outcomes == dict.fromkeys(Q5_TESTS, "passed"), result.messages


def test_q5_app_without_endpoints_fails_the_right_tests(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """An app with no routes answers 404 everywhere: only the 404 test passes."""
    learner({"solution.py": "from fastapi import FastAPI\n\napp = FastAPI()\n"})
    result = run_hidden(tmp_path / "judge", Q5["expectation"]["tests"]["code"])
    expected = dict.fromkeys(Q5_TESTS, "failed")
    expected["test_unknown_item_is_404"] = "failed"  # FastAPI's 404 body is "Not Found"
    assert result.outcomes == expected


def test_q5_app_that_raises_at_import_is_a_collection_error(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """A solution raising at import makes the hidden module fail with the learner's error."""
    source = "from fastapi import FastAPI\n\napp = FastAPI()\nraise RuntimeError('boom')\n"
    learner({"solution.py": source})
    result = run_hidden(tmp_path / "judge", Q5["expectation"]["tests"]["code"])
    assert list(result.outcomes) == ["<collection>"]
    assert (
        "RemoteImportError: RuntimeError: boom (solution.py, line 4)"
        in (result.messages["<collection>"])
    )


def test_q6_reference_fixture_passes_every_hidden_test(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """The learner's async fixture, driven judge-side, passes q6's hidden tests."""
    learner({"solution.py": Q6["code"]})
    result = run_hidden(tmp_path / "judge", Q6["expectation"]["tests"]["code"])
    assert result.outcomes == dict.fromkeys(Q6_TESTS, "passed"), result.messages


def test_q6_fixture_that_leaks_its_override_fails_the_last_test(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """Without the cleanup after ``yield``, the override leaks and the last test fails."""
    leaky = Q6["code"].replace("app.dependency_overrides.pop(get_current_user, None)", "pass")
    assert leaky != Q6["code"]
    learner({"solution.py": leaky})
    result = run_hidden(tmp_path / "judge", Q6["expectation"]["tests"]["code"])
    expected = dict.fromkeys(Q6_TESTS, "passed")
    expected["test_override_is_removed_after_the_test"] = "failed"
    assert result.outcomes == expected, result.messages
