"""`grader challenges validate` proves io challenges by running every case, like every kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_challenges_cli import ROOT, invoke

pytestmark = pytest.mark.docker

IO_SET = ROOT / "challenges" / "io-basics"


def test_validate_proves_the_io_set(built_environments: list[str]) -> None:
    """Every reference solution passes every case of its challenge."""
    code, stdout = invoke("challenges", "validate", str(IO_SET), "--json", "--runs", "1")
    assert code == 0, stdout
    reports = json.loads(stdout)
    assert len(reports) == 4
    assert {c["detail"] for r in reports for c in r["checks"]} == {"all 3 cases passed"}


def test_validate_refuses_a_case_the_solution_does_not_meet(
    built_environments: list[str], tmp_path: Path
) -> None:
    """A wrong expected output makes validate exit 1, naming the case and showing its diff."""
    folder = tmp_path / "io-basics"
    folder.mkdir()
    text = (IO_SET / "q1-sum-of-two.yaml").read_text().replace('stdout: "-3\\n"', 'stdout: "-2\\n"')
    (folder / "q1-sum-of-two.yaml").write_text(text)
    code, stdout = invoke("challenges", "validate", str(folder), "--json", "--runs", "1")
    assert code == 1
    (report,) = json.loads(stdout)
    (check,) = report["checks"]
    assert check["ok"] is False
    assert check["detail"] == (
        "1 of 3 cases did not pass: negative (first: negative: output does not match (exact))"
    )
    assert check["observed"] == (
        "negative: failed: output does not match (exact)\n"
        "--- expected\n+++ actual\n@@ -1 +1 @@\n--2\n+-3"
    )
