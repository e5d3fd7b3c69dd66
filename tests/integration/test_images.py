"""Offline image builds through the real engine: from nothing, as a no-op, pinned contents."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import docker
import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.constants import LABEL_ENVIRONMENT, LABEL_INPUTS_HASH, LABEL_PACKAGE_PREFIX
from grader.domain.environment import select
from grader.sandbox import ImageBuilder, connect, image_tag
from grader.settings import Settings
from tests.conftest import NEW_ENV, OLD_ENV, Runner

pytestmark = pytest.mark.docker

VERSIONS_SNIPPET = """
import importlib.metadata as md, sys
versions = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in md.distributions()}
python = "%d.%d" % sys.version_info[:2]
"""


@pytest.fixture
def scratch_namespace() -> Iterator[Settings]:
    """Settings whose base and environment tags no other test uses; removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings()
    images = settings.images.model_copy(
        update={"base": f"grader-base:test-{suffix}", "repository": f"grader-env-test-{suffix}"}
    )
    yield settings.model_copy(update={"images": images})
    client = docker.from_env(timeout=600)  # removing layers is slow on a busy fuse-overlayfs
    for image in client.images.list():
        for tag in image.tags:
            if suffix in tag:
                client.images.remove(tag, force=True)


@pytest.mark.slow
def test_builds_from_nothing_then_is_a_no_op(scratch_namespace: Settings) -> None:
    """With no base and no image, build bootstraps the base offline; a second build does nothing."""
    builder = ImageBuilder(connect(), scratch_namespace.images)
    client = docker.from_env()
    assert not client.images.list(name=scratch_namespace.images.base)
    steps: list[str] = []
    base_id = builder.ensure_base(steps.append)
    assert any(step.startswith("debootstrap bookworm") for step in steps)
    assert builder.ensure_base() == base_id  # present now: no second bootstrap
    (env,) = select(scratch_namespace.images.root, [OLD_ENV])
    first = builder.build(env, base_id)
    assert first.rebuilt is True
    second = builder.build(env, base_id)
    assert second.rebuilt is False
    assert second.image_id == first.image_id
    image = client.images.get(image_tag(OLD_ENV, repository=scratch_namespace.images.repository))
    assert image.id == first.image_id
    assert image.labels[LABEL_INPUTS_HASH] == builder.inputs_hash(env, base_id)


def test_build_is_a_no_op_when_current(settings: Settings, built_environments: list[str]) -> None:
    """Building the shipped environments again rebuilds nothing and keeps the image ids."""
    builder = ImageBuilder(connect(), settings.images)
    base_id = builder.ensure_base()
    for env in select(settings.images.root, None):
        before = builder.built(env.name).image_id
        result = builder.build(env, base_id)
        assert (result.rebuilt, result.image_id) == (False, before)


@pytest.mark.parametrize("env_name", [OLD_ENV, NEW_ENV])
def test_versions_inside_the_image_equal_the_lock(
    run: Runner, settings: Settings, env_name: str
) -> None:
    """Every distribution in the image's venv is exactly the lock, and pip is gone."""
    (env,) = select(settings.images.root, [env_name])
    obs = run.script(VERSIONS_SNIPPET, env=env_name, state=("versions", "python"))
    assert obs.state["python"].value == env.manifest.python
    assert obs.state["versions"].value == env.lock
    for package, version in env.manifest.packages.items():
        assert env.lock[package] == version


@pytest.mark.parametrize("env_name", [OLD_ENV, NEW_ENV])
def test_image_labels_record_name_and_versions(
    settings: Settings, built_environments: list[str], env_name: str
) -> None:
    """The image's labels carry its environment name and every package version."""
    (env,) = select(settings.images.root, [env_name])
    labels = docker.from_env().images.get(image_tag(env_name)).labels
    assert labels[LABEL_ENVIRONMENT] == env_name
    for package, version in env.lock.items():
        assert labels[f"{LABEL_PACKAGE_PREFIX}{package}"] == version


def test_cli_list_reports_built_images(built_environments: list[str]) -> None:
    """`grader images list --json` shows every environment as built, with its pins."""
    result = CliRunner().invoke(app, ["images", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {OLD_ENV, NEW_ENV}
    assert rows[OLD_ENV]["built"] is True
    assert rows[OLD_ENV]["packages"]["httpx"] == "0.27.2"
    assert rows[NEW_ENV]["packages"]["httpx"] == "0.28.1"
    assert rows[OLD_ENV]["image_id"].startswith("sha256:")


def test_cli_build_unknown_environment_fails_clearly() -> None:
    """Asking to build an unknown environment exits 1 and names the known ones."""
    result = CliRunner().invoke(app, ["images", "build", "no-such-env"])
    assert result.exit_code == 1
    assert "unknown environment(s) no-such-env" in result.output
