"""The Docker engine: the one client factory, the one exception mapping, image tags and records.

Every module of the sandbox reaches the engine through a client made by ``connect`` and calls
it inside ``engine_errors``, which turns Docker's exceptions into Grader's error tree (as
httpx's ``map_httpcore_exceptions`` does for httpcore). No other module imports ``docker``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from docker import DockerClient
from docker.models.images import Image

from ..constants import (
    ENV_IMAGE_REPO,
    LABEL_ENVIRONMENT,
    LABEL_INPUTS_HASH,
    LABEL_PACKAGES,
    LABEL_PREIMPORT,
    LABEL_PYTHON,
)
from ..domain import EnvironmentRef
from ..errors import EngineConflict, GraderError, ImageNotBuilt, NotInEngine, SandboxError

__all__ = [
    "DockerClient",
    "EnvironmentImage",
    "Image",
    "connect",
    "engine_errors",
    "environment_image",
    "find_image",
    "image_tag",
]

_NOT_FOUND = 404
_CONFLICT = 409


@contextmanager
def engine_errors(what: str, error: type[GraderError] = SandboxError) -> Iterator[None]:
    """Translate what the engine raises inside this block into Grader's errors.

    A missing container or image becomes ``NotInEngine``, a conflict (a removal already under
    way) ``EngineConflict``, anything else from the engine or its socket ``error``; each
    message starts with ``what``.
    """
    try:
        yield
    except docker.errors.APIError as exc:  # NotFound and ImageNotFound are APIErrors too
        if isinstance(exc, docker.errors.NotFound) or exc.status_code == _NOT_FOUND:
            raise NotInEngine(f"{what}: {_explain(exc)}") from None
        if exc.status_code == _CONFLICT:
            raise EngineConflict(f"{what}: {_explain(exc)}") from None
        raise error(f"{what}: {exc}") from None
    except (docker.errors.DockerException, OSError) as exc:
        # requests' connection errors and timeouts are OSErrors, not DockerExceptions.
        raise error(f"{what}: {exc}") from None


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


def connect(timeout: float = 60.0) -> DockerClient:
    """A client for the local engine (``DOCKER_HOST`` and friends are honoured), pinged."""
    with engine_errors("cannot reach the Docker engine"):
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    return client


def image_tag(environment: str, version: str = "latest", repository: str = ENV_IMAGE_REPO) -> str:
    """The tag of an environment's image: ``<repository>/<environment>:<version>``."""
    return f"{repository}/{environment}:{version}"


@dataclass(frozen=True)
class EnvironmentImage:
    """An environment's image as the engine has it, described by its labels."""

    environment: str
    image_id: str
    packages: dict[str, str] = field(default_factory=dict)
    preimport: tuple[str, ...] = ()
    python: str = ""
    inputs_hash: str = ""
    tags: tuple[str, ...] = ()
    created: str = ""

    @property
    def ref(self) -> EnvironmentRef:
        """What every observation records: the environment's name and the image's digest."""
        return EnvironmentRef(name=self.environment, image_id=self.image_id)

    @classmethod
    def from_image(cls, environment: str, image: Image) -> EnvironmentImage:
        """Read the labels ``grader images build`` put on the image."""
        labels: dict[str, Any] = image.labels or {}
        try:
            packages = dict(json.loads(labels.get(LABEL_PACKAGES, "{}")))
            preimport = tuple(json.loads(labels.get(LABEL_PREIMPORT, "[]")))
        except ValueError:
            packages, preimport = {}, ()
        return cls(
            environment=environment,
            image_id=str(image.id),
            packages=packages,
            preimport=preimport,
            python=str(labels.get(LABEL_PYTHON, "")),
            inputs_hash=str(labels.get(LABEL_INPUTS_HASH, "")),
            tags=tuple(image.tags),
            created=str(image.attrs.get("Created", "")),
        )


def find_image(client: DockerClient, reference: str) -> Image | None:
    """The image by tag or id, or None when the engine has none."""
    try:
        with engine_errors(f"cannot inspect image {reference}"):
            return client.images.get(reference)
    except NotInEngine:
        return None


def environment_image(
    client: DockerClient, environment: str, repository: str = ENV_IMAGE_REPO
) -> EnvironmentImage:
    """The current image of an environment, or ``ImageNotBuilt``."""
    image = find_image(client, image_tag(environment, repository=repository))
    if image is None:
        raise ImageNotBuilt(
            f"environment {environment!r} has no image; run 'grader images build {environment}'"
        )
    if (image.labels or {}).get(LABEL_ENVIRONMENT) != environment:
        raise SandboxError(f"the image of {environment} lacks its environment label")
    return EnvironmentImage.from_image(environment, image)
