"""``grader challenges``: load errors printed literally, all at once; failures show the run.

The commands run here with a scripted fake sandbox in place of Docker (the real path is in
``tests/integration/test_challenges_cli.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import challenges as cli
from grader.cli.main import app
from grader.domain import CapturedStream, Observation, RunRequest, Sandbox
from grader.sandbox.testing import FakeSandbox, completed
from grader.settings import Settings

ENV = "fastapi-0.115-httpx-0.27"  # a shipped environment, found under images/

GOOD = f"""\
title: Brackets
kind: output
prompt: What does it print?
environment: {ENV}
code: print("[red]x[/red]")
expectation:
  output:
    stdout: "[red]x[/red]\\n"
"""

PATTERN = "'^[a-z0-9][a-z0-9-]{0,62}$'"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fake sandbox prints what the test puts in this list (the first item)."""
    stdout = ["[red]x[/red]\n"]

    def answer(env: str, req: RunRequest) -> Observation:
        text = stdout[0]
        return completed(env, stdout=CapturedStream(text=text, bytes=len(text)))

    @contextmanager
    def fake(settings: Settings, environments: list[str]) -> Iterator[Sandbox]:
        yield FakeSandbox(answer)

    monkeypatch.setattr(cli, "docker_sandbox", fake)
    monkeypatch.setenv("COLUMNS", "200")
    return stdout


def test_every_broken_file_is_printed_literally_and_the_run_fails(tmp_path: Path) -> None:
    """Brackets survive (no rich markup), every broken file is named, and it exits 1."""
    folder = tmp_path / "demo"
    bad_id = write(folder, "Bad_Name.yaml", GOOD)
    bad_regex = write(
        folder, "regex.yaml", GOOD.replace("    stdout:", "    match: regex\n    stdout: '[a-'\n#")
    )
    result = CliRunner().invoke(app, ["challenges", "validate", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {bad_id}:1: field 'id': String should match pattern {PATTERN}; "
        "the id comes from the file name 'Bad_Name.yaml': rename the file, or set 'id:'",
        f"error: {bad_regex}:9: field 'expectation.output.stdout': Value error, invalid regex "
        "'[a-': unterminated character set at position 0",
    ]
    assert "0/0 challenges valid" in result.stdout
    assert "2 files did not load (errors above)" in result.stdout


def test_valid_files_are_still_validated_beside_broken_ones(
    tmp_path: Path, printed: list[str]
) -> None:
    """A broken file does not stop the others from being validated; the run still fails."""
    folder = tmp_path / "demo"
    write(folder, "good.yaml", GOOD)
    broken = write(folder, "broken.yaml", GOOD.replace(f"environment: {ENV}", "environment: x"))
    result = CliRunner().invoke(app, ["challenges", "validate", str(folder), "--runs", "1"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(
        f"error: {broken}:4: field 'environment': unknown environment 'x'; known: "
    )
    assert "✓ demo/good (output)" in result.stdout
    assert "1/1 challenges valid (each code and code option run once); 1 file did not load" in (
        result.stdout
    )


def test_a_failed_output_check_shows_the_diff_in_the_table(
    tmp_path: Path, printed: list[str]
) -> None:
    """The table shows expected and actual output as a diff, brackets and all."""
    printed[0] = "[blue]y[/blue]\n"
    write(tmp_path / "demo", "good.yaml", GOOD)
    result = CliRunner().invoke(app, ["challenges", "validate", str(tmp_path), "--runs", "1"])
    assert result.exit_code == 1
    rows = [line.split("│") for line in result.stdout.splitlines() if line.startswith("│")]
    details = [row[-2].strip() for row in rows]  # the last column: '│ ... │ detail │'
    assert details[-5:] == [
        "--- expected",
        "+++ actual",
        "@@ -1 +1 @@",
        "-[red]x[/red]",
        "+[blue]y[/blue]",
    ]
    assert "0/1 challenges valid" in result.stdout


def test_json_reports_carry_what_was_observed(tmp_path: Path, printed: list[str]) -> None:
    """--json gives each failed check its observation: here the unified diff."""
    printed[0] = "2\n"
    write(tmp_path / "demo", "good.yaml", GOOD)
    result = CliRunner().invoke(
        app, ["challenges", "validate", str(tmp_path), "--runs", "1", "--json"]
    )
    assert result.exit_code == 1
    (report,) = json.loads(result.stdout)
    (check,) = report["checks"]
    assert (check["ok"], check["detail"]) == (False, "output does not match (exact)")
    assert check["observed"] == "--- expected\n+++ actual\n@@ -1 +1 @@\n-[red]x[/red]\n+2"
