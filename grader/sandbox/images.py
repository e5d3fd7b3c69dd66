"""Building environment images, offline.

No registry is assumed: the base is used when present, pulled when a registry answers, and
otherwise bootstrapped from Debian packages (``base_image.py``). Wheels are downloaded on the
host against each hash lock (``wheels.py``) and installed in the image with ``pip
--no-index --require-hashes``. An image is rebuilt only when its inputs changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..constants import (
    BASE_IMAGE_REPO,
    BASE_SUITE,
    HARNESS_DIR,
    LABEL_ENVIRONMENT,
    LABEL_INPUTS_HASH,
    LABEL_PACKAGE_PREFIX,
    LABEL_PACKAGES,
    LABEL_PREIMPORT,
    LABEL_PYTHON,
    LABEL_ROLE,
    SANDBOX_UID,
    SANDBOX_WORKDIR,
)
from ..domain.environment import Environment
from ..errors import GraderError, ImageError
from ..settings import ImageSettings
from .base_image import Progress, bootstrap_base, quiet
from .engine import (
    DockerClient,
    EnvironmentImage,
    Image,
    engine_errors,
    environment_image,
    find_image,
    image_tag,
)
from .wheels import download_locked


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did for one environment."""

    environment: str
    image_id: str
    rebuilt: bool


class ImageBuilder:
    """Builds base and environment images through one Docker client."""

    def __init__(self, client: DockerClient, settings: ImageSettings) -> None:
        self._client = client
        self._settings = settings

    # base ---------------------------------------------------------------------------------

    def ensure_base(self, progress: Progress = quiet) -> str:
        """Return the base image's id: present, pulled, or bootstrapped from Debian packages."""
        wanted = self._settings.base
        found = self.find(wanted)
        if found is not None:
            progress(f"base {wanted} present")
            return str(found.id)
        if wanted.startswith(f"{BASE_IMAGE_REPO}:"):  # ours: made here, never pulled
            return self.bootstrap_base(wanted, progress)
        progress(f"base {wanted} absent; trying to pull it")
        with contextlib.suppress(GraderError), engine_errors(f"cannot pull {wanted}"):
            return str(self._client.images.pull(wanted).id)
        tag = f"{BASE_IMAGE_REPO}:{BASE_SUITE}"
        progress(f"cannot pull {wanted}; using a Debian base bootstrapped as {tag}")
        found = self.find(tag)
        if found is not None:
            return str(found.id)
        return self.bootstrap_base(tag, progress)

    def bootstrap_base(
        self, tag: str, progress: Progress = quiet, packages: tuple[str, ...] | None = None
    ) -> str:
        """debootstrap a minimal Debian with python3, then ``docker import`` it as ``tag``."""
        extra = {} if packages is None else {"packages": packages}
        return bootstrap_base(
            self._client, tag, mirror=self._settings.debian_mirror, progress=progress, **extra
        )

    # wheels -------------------------------------------------------------------------------

    def download_wheels(self, env: Environment, progress: Progress = quiet) -> Path:
        """Fetch every locked wheel of an environment on the host, checked against the lock."""
        return self.download_locked(env.name, env.lock_path, env.manifest.python, progress)

    def download_locked(
        self, name: str, lock_path: Path, python: str, progress: Progress = quiet
    ) -> Path:
        """Fetch every wheel a hash lock names into the host cache (once per lock content)."""
        return download_locked(self._settings.wheel_cache, name, lock_path, python, progress)

    # environment images -------------------------------------------------------------------

    def inputs_hash(self, env: Environment, base_id: str) -> str:
        harness = self._settings.root / HARNESS_DIR
        return hashlib.sha256(f"{env.inputs_hash(harness)}:{base_id}".encode()).hexdigest()

    def is_current(self, env: Environment, base_id: str) -> bool:
        image = self.find(self._tag(env.name))
        if image is None:
            return False
        labels = image.labels or {}
        return bool(labels.get(LABEL_INPUTS_HASH) == self.inputs_hash(env, base_id))

    def build(
        self, env: Environment, base_id: str, *, force: bool = False, progress: Progress = quiet
    ) -> BuildResult:
        """Build ``env`` unless an image from the same inputs already exists."""
        inputs = self.inputs_hash(env, base_id)
        existing = self.find(self._tag(env.name))
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
                buildargs={
                    "BASE": base_id,
                    "PYTHON": env.manifest.python,
                    "SANDBOX_UID": str(SANDBOX_UID),
                    "SANDBOX_WORKDIR": SANDBOX_WORKDIR,
                    "PREIMPORT": " ".join(env.manifest.preimport),
                },
            )
        return BuildResult(env.name, image_id, rebuilt=True)

    @contextlib.contextmanager
    def _context(self, env: Environment, wheels: Path) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix=f"grader-ctx-{env.name}-") as tmp:
            context = Path(tmp)
            shutil.copy2(env.dockerfile_path, context / "Dockerfile")
            shutil.copy2(env.lock_path, context / "requirements.lock")
            copy_wheels(wheels, context / "wheels")
            shutil.copytree(
                self._settings.root / HARNESS_DIR,
                context / HARNESS_DIR,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "modules.bundle*"),
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
        log: list[str] = []
        with engine_errors(f"building {name} failed", ImageError):
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
            image_id = _follow_build(name, stream, log, progress)
        if image_id is None:
            found = self.find(tag)
            if found is None:
                raise ImageError(f"building {name} produced no image\n" + "\n".join(log))
            image_id = str(found.id)
        self._retag(image_id, latest)
        return image_id

    def _retag(self, image_id: str, latest: str) -> None:
        """Point ``latest`` at the new build; drop the build it superseded, unless in use."""
        previous = self.find(latest)
        repository, _, version = latest.rpartition(":")
        with engine_errors(f"cannot tag {latest}", ImageError):
            self._client.images.get(image_id).tag(repository, version)
        if previous is None or previous.id == image_id:
            return
        for old in previous.tags:
            if old == latest or not old.startswith(f"{repository}:"):
                continue  # that tag now names the new image, or belongs to another repository
            with contextlib.suppress(GraderError), engine_errors(f"cannot remove {old}"):
                self._client.images.remove(old, noprune=False)

    # lookup -------------------------------------------------------------------------------

    def _tag(self, name: str, version: str = "latest") -> str:
        return image_tag(name, version, self._settings.repository)

    def built(self, env_name: str) -> EnvironmentImage:
        """The current image of an environment, or ``ImageNotBuilt``."""
        return environment_image(self._client, env_name, self._settings.repository)

    def find(self, reference: str) -> Image | None:
        """The image by tag or id, or None."""
        return find_image(self._client, reference)


def copy_wheels(wheels: Path, target: Path) -> None:
    """Put the downloaded wheels into a build context."""
    target.mkdir()
    for wheel in wheels.glob("*.whl"):
        shutil.copy2(wheel, target / wheel.name)


def _follow_build(
    name: str, stream: Iterator[dict[str, object]], log: list[str], progress: Progress
) -> str | None:
    """Show the build's steps, keep its last lines for errors; the built image's id."""
    image_id: str | None = None
    for chunk in stream:
        text = str(chunk.get("stream", "")).strip()
        if text:
            log[:] = [*log[-39:], text]
            if text.startswith("Step ") and " : LABEL " not in text:
                progress(f"{name}: {text}")
        if "error" in chunk:
            detail = _error_detail(chunk)
            raise ImageError(f"building {name} failed: {detail}\n" + "\n".join(log))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = str(aux["ID"])
    return image_id


def _error_detail(chunk: dict[str, object]) -> str:
    detail = chunk.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    return str(chunk["error"])
