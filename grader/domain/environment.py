"""Environments: pinned runtime images described by a folder under ``images/``.

A folder holds ``environment.toml`` (name, Python version, pinned top-level packages, modules
to pre-import) and ``requirements.lock`` (every transitive package, hash-locked). It is built
from ``images/environment.Dockerfile``, or from a ``Dockerfile`` of its own when it has one.
This module reads and checks them; it never talks to Docker.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..constants import (
    DOCKERFILE,
    ENVIRONMENT_DOCKERFILE,
    HARNESS_DIR,
    LOCK_FILE,
    MANIFEST_FILE,
)
from ..errors import InvalidEnvironment, UnknownEnvironment

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\;]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Manifest(BaseModel):
    """What ``environment.toml`` says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    python: Annotated[str, StringConstraints(pattern=r"^3\.\d+$")]
    description: str = ""
    packages: dict[str, str] = Field(min_length=1)
    preimport: tuple[str, ...] = ()


class Environment(BaseModel):
    """An environment folder, read and checked."""

    model_config = ConfigDict(frozen=True)

    manifest: Manifest
    folder: Path
    lock: dict[str, str]  # normalised name -> pinned version, every transitive package

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_FILE

    @property
    def dockerfile_path(self) -> Path:
        """The folder's own Dockerfile, or the template shared by every environment."""
        return _dockerfile(self.folder)

    def inputs_hash(self, harness_dir: Path) -> str:
        """Content hash of everything the image is built from, except the base image."""
        digest = hashlib.sha256()
        for path in (self.folder / MANIFEST_FILE, self.lock_path, self.dockerfile_path):
            _feed(digest, path.name, path.read_bytes())
        for path in sorted(p for p in harness_dir.rglob("*.py") if "__pycache__" not in p.parts):
            _feed(digest, path.relative_to(harness_dir).as_posix(), path.read_bytes())
        return digest.hexdigest()


def _dockerfile(folder: Path) -> Path:
    own = folder / DOCKERFILE
    return own if own.is_file() else folder.parent / ENVIRONMENT_DOCKERFILE


def _feed(digest: hashlib._Hash, name: str, data: bytes) -> None:
    digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)


def parse_lock(path: Path) -> dict[str, str]:
    """Pinned versions from a hash-locked requirements file; every pin must carry a hash."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidEnvironment(f"{path}: cannot read the lock file: {exc.strerror}") from None
    pins: dict[str, str] = {}
    logical = text.replace("\\\n", " ")
    for number, line in enumerate(logical.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        match = _PIN.match(stripped)
        if match is None:
            raise InvalidEnvironment(f"{path}: entry {number} is not a 'name==version' pin")
        if not _HASH.search(stripped):
            raise InvalidEnvironment(f"{path}: {match['name']} has no sha256 hash")
        pins[normalize(match["name"])] = match["version"]
    if not pins:
        raise InvalidEnvironment(f"{path}: the lock file pins nothing")
    return pins


def load_environment(folder: Path) -> Environment:
    """Read and check one environment folder."""
    manifest_path = folder / MANIFEST_FILE
    try:
        raw = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidEnvironment(f"{manifest_path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidEnvironment(f"{manifest_path}: invalid TOML: {exc}") from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidEnvironment(f"{manifest_path}: field '{field}': {first['msg']}") from None
    if manifest.name != folder.name:
        raise InvalidEnvironment(
            f"{manifest_path}: field 'name': {manifest.name!r} differs from the folder name"
        )
    if not _dockerfile(folder).is_file():
        raise InvalidEnvironment(
            f"{folder}: no {DOCKERFILE}, and no {ENVIRONMENT_DOCKERFILE} beside the folder"
        )
    lock = parse_lock(folder / LOCK_FILE)
    for package, version in manifest.packages.items():
        locked = lock.get(normalize(package))
        if locked != version:
            raise InvalidEnvironment(
                f"{folder / LOCK_FILE}: {package} is locked at {locked!r} but the manifest "
                f"pins {version!r}; run 'grader images lock {manifest.name}'"
            )
    return Environment(manifest=manifest, folder=folder, lock=lock)


def discover(root: Path) -> dict[str, Environment]:
    """Every environment under ``root``, by name (folders without a manifest are skipped)."""
    found: dict[str, Environment] = {}
    for folder in sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).is_file()):
        env = load_environment(folder)
        found[env.name] = env
    return found


def select(root: Path, names: list[str] | None) -> list[Environment]:
    """The named environments (all when ``names`` is empty), in a stable order."""
    available = discover(root)
    if not names:
        return list(available.values())
    missing = [n for n in names if n not in available]
    if missing:
        known = ", ".join(available) or "none"
        raise UnknownEnvironment(f"unknown environment(s) {', '.join(missing)}; known: {known}")
    return [available[n] for n in names]


def harness_dir(root: Path) -> Path:
    """The harness sources baked into every image."""
    return root / HARNESS_DIR
