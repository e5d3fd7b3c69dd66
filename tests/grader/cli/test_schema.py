"""The committed JSON Schema for challenge files is current."""

from __future__ import annotations

from pathlib import Path

from grader.cli.challenges import challenge_schema


def test_committed_schema_matches_the_model() -> None:
    """challenges/schema.json equals what `grader challenges schema` generates."""
    committed = Path(__file__).resolve().parents[3] / "challenges" / "schema.json"
    assert committed.read_text() == challenge_schema(), "run: grader challenges schema --write"
