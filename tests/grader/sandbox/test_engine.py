"""Docker's exceptions become Grader's, in one place; image tags and labels are read one way."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
import requests

from grader.constants import LABEL_INPUTS_HASH, LABEL_PACKAGES, LABEL_PREIMPORT, LABEL_PYTHON
from grader.errors import EngineConflict, ImageError, NotInEngine, SandboxError
from grader.sandbox.engine import EnvironmentImage, engine_errors, image_tag


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (docker.errors.ImageNotFound("gone"), NotInEngine, "inspect x: gone"),
        (api_error(404, "No such container: abc"), NotInEngine, "inspect x: No such container"),
        (api_error(409, "removal already in progress"), EngineConflict, "removal already"),
        (api_error(500, "boom"), ImageError, "inspect x: 500 Server Error"),
        (docker.errors.DockerException("no socket"), ImageError, "inspect x: no socket"),
        (requests.ConnectionError("refused"), ImageError, "inspect x: refused"),
    ],
)
def test_engine_errors_map_onto_the_error_tree(
    raised: Exception, expected: type[Exception], message: str
) -> None:
    """Not-found, conflicts, other API errors and socket errors each get their own class."""
    with pytest.raises(expected, match=message), engine_errors("inspect x", ImageError):
        raise raised


def test_engine_errors_leave_our_own_errors_alone() -> None:
    """An error of ours raised inside the block passes through unchanged."""
    with pytest.raises(SandboxError, match=r"^ours$"), engine_errors("x"):
        raise SandboxError("ours")


def test_not_found_is_a_sandbox_error_whatever_the_default() -> None:
    """Callers that only catch SandboxError still catch a missing object."""
    assert issubclass(NotInEngine, SandboxError)
    assert issubclass(EngineConflict, SandboxError)


def test_image_tag() -> None:
    """One spelling of an environment image's tag."""
    assert image_tag("env-a") == "grader-env/env-a:latest"
    assert image_tag("env-a", "0123abcd", "scratch") == "scratch/env-a:0123abcd"


def test_environment_image_reads_its_labels() -> None:
    """Packages, pre-imports, Python and the inputs hash come from the image's labels."""
    labels: dict[str, Any] = {
        LABEL_PACKAGES: json.dumps({"httpx": "0.27.2"}),
        LABEL_PREIMPORT: json.dumps(["fastapi", "pytest"]),
        LABEL_PYTHON: "3.11",
        LABEL_INPUTS_HASH: "abc",
    }
    image = SimpleNamespace(
        id="sha256:1", labels=labels, tags=["grader-env/env-a:latest"], attrs={"Created": "now"}
    )
    described = EnvironmentImage.from_image("env-a", image)  # type: ignore[arg-type]
    assert described == EnvironmentImage(
        environment="env-a",
        image_id="sha256:1",
        packages={"httpx": "0.27.2"},
        preimport=("fastapi", "pytest"),
        python="3.11",
        inputs_hash="abc",
        tags=("grader-env/env-a:latest",),
        created="now",
    )
    assert described.ref.model_dump() == {"name": "env-a", "image_id": "sha256:1"}


def test_environment_image_with_broken_labels_has_no_packages() -> None:
    """Labels that are not JSON give empty packages and pre-imports, not a crash."""
    image = SimpleNamespace(
        id="sha256:2", labels={LABEL_PACKAGES: "{", LABEL_PREIMPORT: "["}, tags=[], attrs={}
    )
    described = EnvironmentImage.from_image("env-b", image)  # type: ignore[arg-type]
    assert (described.packages, described.preimport) == ({}, ())
