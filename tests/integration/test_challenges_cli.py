"""`grader challenges validate` and `matrix` through the real sandbox and Docker."""

from __future__ import annotations

import json
import shutil
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
    """A broken file stops validation with file, line and field."""
    folder = tmp_path / "broken"
    folder.mkdir()
    shutil.copy(SEED / "q4-counter-after-test.yaml", folder / "q4.yaml")
    path = folder / "q4.yaml"
    path.write_text(
        path.read_text().replace("environment: fastapi-0.115-httpx-0.27", "environment: nope")
    )
    result = CliRunner().invoke(app, ["challenges", "validate", str(folder)])
    assert result.exit_code == 1
    assert "q4.yaml:" in result.output
    assert "field 'environment': unknown environment 'nope'" in result.output


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
