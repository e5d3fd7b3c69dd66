"""Building and finding environment images, offline. Docker's exceptions stop here.

No registry is assumed: the base is used when present, pulled when a registry answers, and
otherwise bootstrapped from Debian packages (debootstrap, then ``docker import``). Wheels are
downloaded on the host against each hash lock and installed in the image with ``pip
--no-index --require-hashes``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.images import Image

from ..constants import (
    BASE_IMAGE_REPO,
    BASE_PACKAGES,
    BASE_SUITE,
    ENV_IMAGE_REPO,
    HARNESS_DIR,
    LABEL_ENVIRONMENT,
    LABEL_INPUTS_HASH,
    LABEL_PACKAGE_PREFIX,
    LABEL_PACKAGES,
    LABEL_PREIMPORT,
    LABEL_PYTHON,
    LABEL_ROLE,
)
from ..domain.environment import Environment
from ..errors import BootstrapError, ImageError, ImageNotBuilt
from ..settings import ImageSettings

Progress = Callable[[str], None]
"""Receives one short line per step of a long operation."""


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class BuiltImage:
    """An environment image present in the engine."""

    environment: str
    image_id: str
    tags: tuple[str, ...]
    inputs_hash: str
    python: str
    packages: dict[str, str]
    preimport: tuple[str, ...]
    created: str


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did for one environment."""

    environment: str
    image_id: str
    rebuilt: bool


def connect() -> docker.DockerClient:
    """A client for the local engine, or ``ImageError`` saying why there is none."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot reach the Docker engine: {exc}") from None
    return client


def env_tag(name: str, suffix: str = "latest", repository: str = ENV_IMAGE_REPO) -> str:
    """The tag of an environment's image."""
    return f"{repository}/{name}:{suffix}"


class ImageBuilder:
    """Builds base and environment images through one Docker client."""

    def __init__(self, client: docker.DockerClient, settings: ImageSettings) -> None:
        self._client = client
        self._settings = settings

    # base ---------------------------------------------------------------------------------

    def ensure_base(self, progress: Progress = _quiet) -> str:
        """Return the base image's id: present, pulled, or bootstrapped from Debian packages."""
        wanted = self._settings.base
        found = self._find(wanted)
        if found is not None:
            progress(f"base {wanted} present")
            return str(found.id)
        if wanted.startswith(f"{BASE_IMAGE_REPO}:"):  # ours: made here, never pulled
            return self.bootstrap_base(wanted, progress)
        progress(f"base {wanted} absent; trying to pull it")
        with contextlib.suppress(docker.errors.DockerException):
            return str(self._client.images.pull(wanted).id)
        tag = f"{BASE_IMAGE_REPO}:{BASE_SUITE}"
        progress(f"cannot pull {wanted}; using a Debian base bootstrapped as {tag}")
        found = self._find(tag)
        if found is not None:
            return str(found.id)
        return self.bootstrap_base(tag, progress)

    def bootstrap_base(
        self, tag: str, progress: Progress = _quiet, packages: tuple[str, ...] = BASE_PACKAGES
    ) -> str:
        """debootstrap a minimal Debian with python3, then ``docker import`` it as ``tag``."""
        debootstrap = shutil.which("debootstrap") or next(
            (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).exists()), None
        )
        if debootstrap is None:
            raise BootstrapError(
                "no base image and no debootstrap to make one: install it "
                "(apt-get install debootstrap) or set GRADER_IMAGES__BASE to a present image"
            )
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
                self._settings.debian_mirror,
            ]
            progress(f"debootstrap {BASE_SUITE} with {', '.join(packages)}")
            self._stream_command(command, progress)
            for junk in (
                "var/cache/apt/archives",
                "var/lib/apt/lists",
                "usr/share/doc",
                "usr/share/man",
                "usr/share/locale",
            ):
                path = rootfs / junk
                if path.is_dir():
                    for child in path.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
            tarball = Path(tmp) / "rootfs.tar"
            progress("packing the root file system")
            subprocess.run(
                ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."],
                check=True,
                capture_output=True,
            )
            repository, _, version = tag.partition(":")
            progress(f"importing as {tag}")
            try:
                self._client.api.import_image_from_file(
                    str(tarball),
                    repository=repository,
                    tag=version or "latest",
                    changes=[
                        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        f"LABEL {LABEL_ROLE}=base",
                        'CMD ["python3"]',
                    ],
                )
            except docker.errors.DockerException as exc:
                raise BootstrapError(f"docker import failed: {exc}") from None
        image = self._find(tag)
        if image is None:
            raise BootstrapError(f"docker import finished but {tag} is missing")
        return str(image.id)

    @staticmethod
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
                if line.startswith(
                    (
                        "I: Retrieving",
                        "I: Validating",
                        "I: Extracting",
                        "I: Unpacking",
                        "I: Configuring",
                        "I: Installing",
                    )
                ):
                    progress(line[3:])
        if proc.returncode != 0:
            raise BootstrapError(
                f"{Path(command[0]).name} exited with {proc.returncode}:\n" + "\n".join(tail)
            )

    # wheels -------------------------------------------------------------------------------

    def download_wheels(self, env: Environment, progress: Progress = _quiet) -> Path:
        """Fetch every locked wheel of an environment on the host, checked against the lock."""
        return self.download_locked(env.name, env.lock_path, env.manifest.python, progress)

    def download_locked(
        self, name: str, lock_path: Path, python: str, progress: Progress = _quiet
    ) -> Path:
        """Fetch every wheel a hash lock names into the host cache (once per lock content)."""
        lock_bytes = lock_path.read_bytes()
        key = hashlib.sha256(lock_bytes + python.encode()).hexdigest()[:16]
        target = self._settings.wheel_cache / f"{name}-{key}"
        marker = target / ".complete"
        if marker.exists():
            progress(f"wheels for {name} cached")
            return target
        target.mkdir(parents=True, exist_ok=True)
        version = python.replace(".", "")
        command = [
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
        progress(f"downloading the wheels for {name}")
        env_vars = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
        result = subprocess.run(command, capture_output=True, text=True, env=env_vars, check=False)
        if result.returncode != 0:
            raise ImageError(
                f"downloading wheels for {name} failed:\n{result.stdout[-2000:]}"
                f"{result.stderr[-2000:]}"
            )
        marker.write_text(lock_bytes.decode())
        return target

    # environment images -------------------------------------------------------------------

    def inputs_hash(self, env: Environment, base_id: str) -> str:
        harness = self._settings.root / HARNESS_DIR
        return hashlib.sha256(f"{env.inputs_hash(harness)}:{base_id}".encode()).hexdigest()

    def is_current(self, env: Environment, base_id: str) -> bool:
        image = self._find(self._tag(env.name))
        if image is None:
            return False
        labels = image.labels or {}
        return bool(labels.get(LABEL_INPUTS_HASH) == self.inputs_hash(env, base_id))

    def build(
        self, env: Environment, base_id: str, *, force: bool = False, progress: Progress = _quiet
    ) -> BuildResult:
        """Build ``env`` unless an image from the same inputs already exists."""
        inputs = self.inputs_hash(env, base_id)
        existing = self._find(self._tag(env.name))
        if (
            not force
            and existing is not None
            and (existing.labels or {}).get(LABEL_INPUTS_HASH) == inputs
        ):
            progress(f"{env.name} up to date")
            return BuildResult(env.name, str(existing.id), rebuilt=False)
        wheels = self.download_wheels(env, progress)
        with self._context(env, wheels) as context:
            labels = {
                LABEL_ROLE: "environment",
                LABEL_ENVIRONMENT: env.name,
                LABEL_INPUTS_HASH: inputs,
                LABEL_PYTHON: env.manifest.python,
                LABEL_PACKAGES: json.dumps(env.lock, sort_keys=True),
                LABEL_PREIMPORT: json.dumps(list(env.manifest.preimport)),
                **{f"{LABEL_PACKAGE_PREFIX}{name}": version for name, version in env.lock.items()},
            }
            image_id = self.docker_build(
                env.name,
                context,
                tag=self._tag(env.name, inputs[:12]),
                latest=self._tag(env.name),
                labels=labels,
                progress=progress,
                buildargs={"BASE": base_id, "PYTHON": env.manifest.python},
            )
        return BuildResult(env.name, image_id, rebuilt=True)

    @contextlib.contextmanager
    def _context(self, env: Environment, wheels: Path) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix=f"grader-ctx-{env.name}-") as tmp:
            context = Path(tmp)
            shutil.copy2(env.dockerfile_path, context / "Dockerfile")
            shutil.copy2(env.lock_path, context / "requirements.lock")
            (context / "wheels").mkdir()
            for wheel in wheels.glob("*.whl"):
                shutil.copy2(wheel, context / "wheels" / wheel.name)
            shutil.copytree(
                self._settings.root / HARNESS_DIR,
                context / HARNESS_DIR,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            yield context

    def docker_build(
        self,
        name: str,
        context: Path,
        *,
        tag: str,
        latest: str,
        buildargs: dict[str, str],
        labels: dict[str, str],
        progress: Progress,
    ) -> str:
        """Build ``context`` as ``tag``, move ``latest`` to it, drop the superseded build."""
        image_id: str | None = None
        log: list[str] = []
        try:
            stream = self._client.api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                labels=labels,
                buildargs=buildargs,
            )
            for chunk in stream:
                text = str(chunk.get("stream", "")).strip()
                if text:
                    log = [*log[-39:], text]
                    if text.startswith("Step ") and " : LABEL " not in text:
                        progress(f"{name}: {text}")
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise ImageError(f"building {name} failed: {detail}\n" + "\n".join(log))
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except docker.errors.DockerException as exc:
            raise ImageError(f"building {name} failed: {exc}") from None
        if image_id is None:
            found = self._find(tag)
            if found is None:
                raise ImageError(f"building {name} produced no image\n" + "\n".join(log))
            image_id = str(found.id)
        previous = self._find(latest)
        repository, _, version = latest.rpartition(":")
        self._client.images.get(image_id).tag(repository, version)
        if previous is not None and previous.id != image_id:
            for old in previous.tags:  # drop the superseded build; ignore it if still in use
                if old == latest:
                    continue  # that tag now names the new image
                with contextlib.suppress(docker.errors.DockerException):
                    self._client.images.remove(old, noprune=False)
        return image_id

    # lookup -------------------------------------------------------------------------------

    def _tag(self, name: str, suffix: str = "latest") -> str:
        return env_tag(name, suffix, self._settings.repository)

    def built(self, env_name: str) -> BuiltImage:
        """The current image of an environment, or ``ImageNotBuilt``."""
        image = self._find(self._tag(env_name))
        if image is None:
            raise ImageNotBuilt(
                f"environment {env_name!r} has no image; run 'grader images build {env_name}'"
            )
        return _describe(env_name, image)

    def find(self, reference: str) -> Image | None:
        """The image by tag or id, or None."""
        return self._find(reference)

    def _find(self, reference: str) -> Image | None:
        try:
            return self._client.images.get(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as exc:
            raise ImageError(f"cannot inspect image {reference}: {exc}") from None


def _describe(env_name: str, image: Image) -> BuiltImage:
    labels: dict[str, Any] = image.labels or {}
    try:
        packages = json.loads(labels.get(LABEL_PACKAGES, "{}"))
        preimport = tuple(json.loads(labels.get(LABEL_PREIMPORT, "[]")))
    except ValueError:
        packages, preimport = {}, ()
    return BuiltImage(
        environment=env_name,
        image_id=str(image.id),
        tags=tuple(image.tags),
        inputs_hash=str(labels.get(LABEL_INPUTS_HASH, "")),
        python=str(labels.get(LABEL_PYTHON, "")),
        packages=packages,
        preimport=preimport,
        created=str(image.attrs.get("Created", "")),
    )


def _platform_args() -> list[str]:
    """pip flags accepting every manylinux wheel the base's glibc (2.36, bookworm) can load."""
    machine = _machine()
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)]
    tags += [f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def _machine() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
