"""Wheels for an image, downloaded on the host against a hash lock (containers reach no index).

The image then installs them with ``pip install --no-index --require-hashes``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

from ..errors import ImageError
from .base_image import Progress, quiet


def download_locked(
    cache: Path, name: str, lock_path: Path, python: str, progress: Progress = quiet
) -> Path:
    """Fetch every wheel a hash lock names into ``cache`` (once per lock content); the folder."""
    lock_bytes = lock_path.read_bytes()
    key = hashlib.sha256(lock_bytes + python.encode()).hexdigest()[:16]
    target = cache / f"{name}-{key}"
    marker = target / ".complete"
    if marker.exists():
        progress(f"wheels for {name} cached")
        return target
    target.mkdir(parents=True, exist_ok=True)
    progress(f"downloading the wheels for {name}")
    env_vars = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    result = subprocess.run(
        _pip_download(python, lock_path, target),
        capture_output=True,
        text=True,
        env=env_vars,
        check=False,
    )
    if result.returncode != 0:
        raise ImageError(
            f"downloading wheels for {name} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    marker.write_text(lock_bytes.decode())
    return target


def _pip_download(python: str, lock_path: Path, target: Path) -> list[str]:
    version = python.replace(".", "")
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--abi",
        f"cp{version}",
        "--abi",
        "abi3",
        "--abi",
        "none",
        *_platform_args(),
        "-r",
        str(lock_path),
        "-d",
        str(target),
    ]


def _platform_args() -> list[str]:
    """pip flags accepting every manylinux wheel the base's glibc (2.36, bookworm) can load."""
    machine = _machine()
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)]
    tags += [f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def _machine() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
