"""`grader challenges validate` and `matrix` through the real sandbox and Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from tests.conftest import NEW_ENV, OLD_ENV

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "challenges" / "async-test-mastery"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_validate_proves_every_seed_key(built_environments: list[str]) -> None:
    """All five seed challenges validate green, each with its key proven."""
    code, stdout = invoke("challenges", "validate", str(SEED), "--json")
    assert code == 0, stdout
    reports = {r["challenge"].split("/")[1]: r for r in json.loads(stdout)}
    assert len(reports) == 5
    assert all(r["ok"] for r in reports.values())
    q2 = reports["q2-which-option-is-a-syntax-error"]["checks"]
    assert q2 == [
        {
            "name": "exactly the keyed option",
            "ok": True,
            "detail": "only C produces the expected syntax",
            "environment": OLD_ENV,
            "observed": "",
        }
    ]
    q1 = reports["q1-async-test-output"]["checks"]
    assert [(c["name"], c["environment"]) for c in q1] == [
        ("code meets the expectation", OLD_ENV),
        ("keyed text equals the observation", OLD_ENV),
        ("code meets the expectation", NEW_ENV),
    ]


def test_validate_fails_on_a_wrong_key(built_environments: list[str], tmp_path: Path) -> None:
    """A file whose key is wrong makes validate exit 1 and name the options that match."""
    folder = tmp_path / "async-test-mastery"
    folder.mkdir()
    text = (SEED / "q4-counter-after-test.yaml").read_text().replace("answer: C", "answer: B")
    (folder / "q4-counter-after-test.yaml").write_text(text)
    code, stdout = invoke("challenges", "validate", str(folder), "--json")
    assert code == 1
    (report,) = json.loads(stdout)
    key_check = next(c for c in report["checks"] if c["name"].startswith("keyed text"))
    assert key_check["ok"] is False
    assert key_check["detail"] == "options equal to the observation: C; key: B"


def test_validate_reports_loader_errors(tmp_path: Path) -> None:
    """Every broken file is reported literally with file, line and field; validate exits 1."""
    folder = tmp_path / "broken"
    folder.mkdir()
    text = (SEED / "q4-counter-after-test.yaml").read_text()
    unknown = folder / "q4.yaml"
    unknown.write_text(text.replace(f"environment: {OLD_ENV}", "environment: nope"))
    misnamed = folder / "Q4_Copy.yaml"
    misnamed.write_text(text)
    result = CliRunner().invoke(app, ["challenges", "validate", str(folder)])
    assert result.exit_code == 1
    lines = text.splitlines()
    first_field = next(n for n, line in enumerate(lines, 1) if not line.startswith("#"))
    assert result.stderr.splitlines() == [
        f"error: {misnamed}:{first_field}: field 'id': String should match pattern "
        "'^[a-z0-9][a-z0-9-]{0,62}$'; the id comes from the file name 'Q4_Copy.yaml': "
        "rename the file, or set 'id:'",
        f"error: {unknown}:{lines.index(f'environment: {OLD_ENV}') + 1}: "
        "field 'environment': unknown environment 'nope'; known: "
        f"{', '.join(sorted([OLD_ENV, NEW_ENV]))}",
    ]


WRONG_OUTPUT = f"""\
title: Brackets
kind: output
prompt: What does it print?
environment: {OLD_ENV}
code: |
  print("[ok]", [1, 2, 3])
  print("done")
expectation:
  output:
    stdout: "[ok] [1, 2]\\ndone\\n"
"""

WRONG_EXCEPTION = f"""\
title: Missing key
kind: exception
prompt: What is raised?
environment: {OLD_ENV}
code: |
  d = {{}}
  d["a"]
expectation:
  exception:
    type: RuntimeError
"""


def test_validate_shows_what_a_real_run_observed(
    built_environments: list[str], tmp_path: Path
) -> None:
    """A wrong output shows its diff, a wrong exception the one raised, from real runs."""
    folder = tmp_path / "wrong"
    folder.mkdir()
    (folder / "output.yaml").write_text(WRONG_OUTPUT)
    (folder / "exception.yaml").write_text(WRONG_EXCEPTION)
    code, stdout = invoke("challenges", "validate", str(folder), "--runs", "1", "--json")
    assert code == 1
    checks = {r["challenge"]: r["checks"] for r in json.loads(stdout)}
    (output,) = checks["wrong/output"]
    assert (output["ok"], output["detail"]) == (False, "output does not match (exact)")
    assert output["observed"] == (
        "--- expected\n+++ actual\n@@ -1,2 +1,2 @@\n-[ok] [1, 2]\n+[ok] [1, 2, 3]\n done"
    )
    (exception,) = checks["wrong/exception"]
    assert exception["detail"] == "expected RuntimeError, got KeyError: 'a'"
    assert exception["observed"] == ("raised KeyError: 'a' (line 2)\nexit code 1\nprinted nothing")


def test_matrix_shows_where_httpx_028_differs(built_environments: list[str]) -> None:
    """The matrix runs the seed in both environments: Q1 passes on 0.27, TypeError on 0.28."""
    code, stdout = invoke("challenges", "matrix", str(SEED), "--json")
    assert code == 0, stdout
    rows = {r["challenge"].split("/")[1]: r for r in json.loads(stdout)}
    assert set(rows) == {
        "q1-async-test-output",
        "q3-why-runtime-error",
        "q4-counter-after-test",
    }  # q2 has only code options, q5 no code
    q1 = {c["environment"]: c for c in rows["q1-async-test-output"]["cells"]}
    assert q1[OLD_ENV]["outcome"] == "1/1 passed"
    assert q1[NEW_ENV]["outcome"].startswith("0/1 passed; TypeError: AsyncClient.__init__()")
    assert all(c["expected"] is True for r in rows.values() for c in r["cells"])
    assert all(r["differs"] for r in rows.values())
    q4 = {c["environment"]: c["outcome"] for c in rows["q4-counter-after-test"]["cells"]}
    assert q4[OLD_ENV] == "1/1 passed; counter=3"
    assert q4[NEW_ENV].endswith("counter=0")
