"""The offline base image: a minimal Debian with python3, bootstrapped and ``docker import``-ed.

Used when no base image is present and no registry answers (our machines, air-gapped hosts):
``debootstrap --variant=minbase`` into a temporary folder, then ``docker import``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..constants import BASE_PACKAGES, BASE_SUITE, LABEL_ROLE
from ..errors import BootstrapError
from .engine import DockerClient, engine_errors, find_image

Progress = Callable[[str], None]
"""Receives one short line per step of a long operation."""

_JUNK = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
)
_SHOWN = (
    "I: Retrieving",
    "I: Validating",
    "I: Extracting",
    "I: Unpacking",
    "I: Configuring",
    "I: Installing",
)


def quiet(_: str) -> None:
    """A progress callback that shows nothing."""


def bootstrap_base(
    client: DockerClient,
    tag: str,
    *,
    mirror: str,
    progress: Progress = quiet,
    packages: tuple[str, ...] = BASE_PACKAGES,
) -> str:
    """debootstrap a minimal Debian with ``packages``, ``docker import`` it as ``tag``; its id."""
    debootstrap = _debootstrap()
    if os.geteuid() != 0:
        raise BootstrapError("bootstrapping the base image needs root (debootstrap chroots)")
    with tempfile.TemporaryDirectory(prefix="grader-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        command = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(packages)}",
            BASE_SUITE,
            str(rootfs),
            mirror,
        ]
        progress(f"debootstrap {BASE_SUITE} with {', '.join(packages)}")
        _stream_command(command, progress)
        _remove_junk(rootfs)
        tarball = Path(tmp) / "rootfs.tar"
        progress("packing the root file system")
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."],
            check=True,
            capture_output=True,
        )
        repository, _, version = tag.partition(":")
        progress(f"importing as {tag}")
        with engine_errors("docker import failed", BootstrapError):
            client.api.import_image_from_file(
                str(tarball),
                repository=repository,
                tag=version or "latest",
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    f"LABEL {LABEL_ROLE}=base",
                    'CMD ["python3"]',
                ],
            )
    image = find_image(client, tag)
    if image is None:
        raise BootstrapError(f"docker import finished but {tag} is missing")
    return str(image.id)


def _debootstrap() -> str:
    found = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).exists()), None
    )
    if found is None:
        raise BootstrapError(
            "no base image and no debootstrap to make one: install it "
            "(apt-get install debootstrap) or set GRADER_IMAGES__BASE to a present image"
        )
    return found


def _remove_junk(rootfs: Path) -> None:
    """Package caches, docs, man pages and locales: megabytes no sandbox needs."""
    for junk in _JUNK:
        path = rootfs / junk
        if not path.is_dir():
            continue
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def _stream_command(command: list[str], progress: Progress) -> None:
    tail: list[str] = []
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        for raw_line in proc.stdout or ():
            line = raw_line.rstrip()
            tail = [*tail[-19:], line]
            if line.startswith(_SHOWN):
                progress(line[3:])
    if proc.returncode != 0:
        raise BootstrapError(
            f"{Path(command[0]).name} exited with {proc.returncode}:\n" + "\n".join(tail)
        )
