"""Several files: which paths a run may name, and a challenge's file policy."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from grader.domain.challenge import Challenge
from grader.domain.files import FilesPolicy, check_files, path_problem
from grader.domain.grading import entry_file, refusal, request_for
from grader.errors import Rejected


@pytest.mark.parametrize(
    "path", ["main.py", "lib/util.py", "data/x.json", "a-b_c.py", "deep/er/still.py", ".env"]
)
def test_relative_paths_are_fine(path: str) -> None:
    """Plain relative POSIX paths, in folders too."""
    assert path_problem(path) is None


def test_check_files_refuses_by_count_size_pattern_and_entry() -> None:
    """413 for too many or too large; 422 for a path outside the allowed patterns or no entry."""
    with pytest.raises(Rejected, match=r"3 files; at most 2") as many:
        check_files({"a": "", "b": "", "c": ""}, entry="a", max_files=2, max_bytes=100)
    assert many.value.status == 413
    with pytest.raises(Rejected, match=r"12 bytes in all; at most 11") as large:
        check_files({"a.py": "12345678"}, entry="a.py", max_files=2, max_bytes=11)
    assert large.value.status == 413
    unallowed = re.escape("'x.txt' is not allowed here; allowed: *.py")
    with pytest.raises(Rejected, match=unallowed) as bad:
        check_files({"x.txt": ""}, entry="x.txt", max_files=2, max_bytes=99, allowed=("*.py",))
    assert bad.value.status == 422
    check_files({"pkg/a.py": ""}, entry="pkg/a.py", max_files=2, max_bytes=99, allowed=("*.py",))


def test_a_policys_entry_must_be_a_safe_allowed_path() -> None:
    """The policy is checked at load: its entry is a safe path its patterns allow."""
    with pytest.raises(ValidationError, match=r"matches none of the allowed patterns"):
        FilesPolicy(entry="main.py", allowed=("lib/*.py",))
    with pytest.raises(ValidationError, match=re.escape("has an empty, '.' or '..' part")):
        FilesPolicy(entry="../main.py")


CHALLENGE = {
    "id": "out",
    "set": "s",
    "title": "t",
    "kind": "output",
    "prompt": "p",
    "code": "print(1)",
    "expectation": {"output": {"stdout": "1\n"}},
}


def test_files_runs_the_policys_entry_with_every_file() -> None:
    """A files answer runs the challenge's entry; without a policy, files are refused."""
    policy = {"entry": "app/run.py", "allowed": ["app/*.py"]}
    item = Challenge.model_validate({**CHALLENGE, "files": policy})
    files = {"app/run.py": "from app import util", "app/util.py": ""}
    request = request_for(item, "", item.expectation, files=files)
    assert (request.entry, request.files) == ("app/run.py", files)
    assert entry_file(item, item.expectation) == "app/run.py"
    assert request_for(item, "print(2)", item.expectation).files == {"app/run.py": "print(2)"}
    plain = Challenge.model_validate(CHALLENGE)
    assert refusal(plain, code=False, choice=False, files=True) == (
        "s/out takes one file: send 'code', not 'files'"
    )
    assert refusal(item, code=False, choice=False, files=True) is None


def test_a_tests_challenges_files_go_to_the_learners_side_only() -> None:
    """Hidden tests stay in the judge's files; every learner file goes to the learner's."""
    item = Challenge.model_validate(
        {
            **CHALLENGE,
            "kind": "tests",
            "mode": "pytest",
            "files": {"entry": "cart.py", "allowed": ["*.py"]},
            "expectation": {
                "tests": {
                    "solution_file": "cart.py",
                    "files": {"test_cart.py": "from cart import total\ndef test_t(): pass\n"},
                }
            },
        }
    )
    files = {"cart.py": "from prices import P\n", "prices.py": "P = 1\n"}
    assert entry_file(item, item.expectation) == "cart.py"
    request = request_for(item, "", item.expectation, files=files)
    assert request.learner is not None
    assert request.learner.files == files
    assert request.learner.modules == ("cart",)
    assert set(request.files) == {"test_cart.py"}
