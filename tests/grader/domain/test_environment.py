"""Environment folders: manifest and lock parsing, errors that name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.domain.environment import load_environment, normalize, parse_lock, select
from grader.errors import InvalidEnvironment, UnknownEnvironment

HASH = "--hash=sha256:" + "a" * 64

MANIFEST = """\
name = "demo-env"
python = "3.11"
preimport = ["httpx"]

[packages]
httpx = "0.27.2"
"""


def make_env(
    root: Path, manifest: str = MANIFEST, lock: str | None = None, name: str = "demo-env"
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "environment.toml").write_text(manifest)
    (folder / "requirements.lock").write_text(
        lock if lock is not None else f"httpx==0.27.2 \\\n    {HASH}\nidna==3.7 \\\n    {HASH}\n"
    )
    (folder / "Dockerfile").write_text("FROM scratch\n")
    return folder


def test_loads_a_valid_environment(tmp_path: Path) -> None:
    """A valid folder yields its manifest and every pinned package of the lock."""
    env = load_environment(make_env(tmp_path))
    assert env.name == "demo-env"
    assert env.manifest.preimport == ("httpx",)
    assert env.lock == {"httpx": "0.27.2", "idna": "3.7"}


def test_lock_pin_without_hash_is_refused(tmp_path: Path) -> None:
    """Every pin in the lock must carry a sha256 hash."""
    folder = make_env(tmp_path, lock=f"httpx==0.27.2 \\\n    {HASH}\nidna==3.7\n")
    with pytest.raises(InvalidEnvironment, match=r"idna has no sha256 hash"):
        load_environment(folder)


def test_lock_with_a_range_is_refused(tmp_path: Path) -> None:
    """A lock line that is not an exact pin is refused with its entry number."""
    folder = make_env(tmp_path, lock=f"httpx>=0.27 \\\n    {HASH}\n")
    with pytest.raises(InvalidEnvironment, match=r"entry 1 is not a 'name==version' pin"):
        load_environment(folder)


def test_manifest_and_lock_must_agree(tmp_path: Path) -> None:
    """A manifest pin the lock does not hold points at the lock command."""
    folder = make_env(tmp_path, manifest=MANIFEST.replace("0.27.2", "0.28.1"))
    with pytest.raises(
        InvalidEnvironment,
        match=r"httpx is locked at '0.27.2' but the manifest "
        r"pins '0.28.1'; run 'grader images lock",
    ):
        load_environment(folder)


def test_manifest_field_errors_name_the_field(tmp_path: Path) -> None:
    """A wrong manifest field is reported with the file and the field."""
    folder = make_env(tmp_path, manifest=MANIFEST.replace('python = "3.11"', 'python = "3"'))
    with pytest.raises(InvalidEnvironment, match=r"environment.toml: field 'python'"):
        load_environment(folder)


def test_manifest_unknown_field_is_refused(tmp_path: Path) -> None:
    """Typos in the manifest are errors, not silently ignored keys."""
    folder = make_env(tmp_path, manifest='pyhton = "3.12"\n' + MANIFEST)
    with pytest.raises(InvalidEnvironment, match=r"field 'pyhton': Extra inputs"):
        load_environment(folder)


def test_name_must_match_folder(tmp_path: Path) -> None:
    """The manifest's name is the folder's name."""
    folder = make_env(tmp_path, name="other")
    with pytest.raises(InvalidEnvironment, match=r"'demo-env' differs from the folder name"):
        load_environment(folder)


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    """Invalid TOML names the manifest file."""
    folder = make_env(tmp_path, manifest="name = \n")
    with pytest.raises(InvalidEnvironment, match=r"environment.toml: invalid TOML"):
        load_environment(folder)


def test_select_unknown_names(tmp_path: Path) -> None:
    """Asking for an environment that does not exist lists the known ones."""
    make_env(tmp_path)
    with pytest.raises(UnknownEnvironment, match=r"unknown environment\(s\) nope; known: demo-env"):
        select(tmp_path, ["nope"])


def test_inputs_hash_changes_with_the_harness(tmp_path: Path) -> None:
    """The inputs hash covers the harness sources, so harness edits trigger a rebuild."""
    env = load_environment(make_env(tmp_path))
    harness = tmp_path / "harness"
    harness.mkdir()
    (harness / "a.py").write_text("x = 1\n")
    first = env.inputs_hash(harness)
    assert env.inputs_hash(harness) == first
    (harness / "a.py").write_text("x = 2\n")
    assert env.inputs_hash(harness) != first


def test_parse_lock_of_the_shipped_environments() -> None:
    """The repository's own locks pin the manifests' versions."""
    root = Path(__file__).resolve().parents[3] / "images"
    old = parse_lock(root / "fastapi-0.115-httpx-0.27" / "requirements.lock")
    assert old["httpx"] == "0.27.2"
    assert old["fastapi"] == "0.115.14"
    new = parse_lock(root / "fastapi-0.165-httpx-0.28" / "requirements.lock")
    assert new["httpx"] == "0.28.1"


def test_normalize() -> None:
    """Project names are compared PEP 503-normalised."""
    assert normalize("Pytest_Asyncio") == "pytest-asyncio"
    assert normalize("typing.extensions") == "typing-extensions"
