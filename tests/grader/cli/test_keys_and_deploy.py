"""`grader keys new` and `grader deploy env`: fresh secrets, only hashes in configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.api.security import hash_key
from grader.cli import app
from grader.settings import ApiKey


def test_keys_new_prints_a_key_and_its_hashed_entry() -> None:
    """The entry holds the key's SHA-256, never the key, and validates as an ApiKey."""
    result = CliRunner().invoke(
        app, ["keys", "new", "--id", "lms", "--role", "instructor", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    entry = ApiKey.model_validate(payload["entry"])
    assert entry.id == "lms"
    assert entry.role.value == "instructor"
    assert entry.sha256 == hash_key(payload["key"])
    assert payload["key"] not in json.dumps(payload["entry"])
    assert entry.webhook_secret is not None
    assert len(entry.webhook_secret.get_secret_value()) >= 32


def test_deploy_env_writes_fresh_keys_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The env file gets hashed keys (mode 600); a second run keeps the first keys."""
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(app, ["deploy", "env", "--port", "8123"])
    assert first.exit_code == 0, first.output
    env = (tmp_path / ".env").read_text()
    raw = dict(line.split("=", 1) for line in (tmp_path / ".grader-key").read_text().split())
    assert raw["submitter"] not in env
    keys = json.loads(
        next(
            line.split("=", 1)[1]
            for line in env.splitlines()
            if line.startswith("GRADER_API__KEYS=")
        )
    )
    assert {k["role"] for k in keys} == {"submitter", "admin"}
    assert hash_key(raw["submitter"]) in {k["sha256"] for k in keys}
    assert "GRADER_PORT=8123" in env
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / ".grader-key").stat().st_mode & 0o777) == "0o600"
    second = CliRunner().invoke(app, ["deploy", "env"])
    assert second.exit_code == 0
    assert (tmp_path / ".env").read_text() == env
