"""Moving an environment's ``latest`` tag: only our repository's superseded tags are dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import docker.errors

from grader.sandbox.images import ImageBuilder
from grader.settings import ImageSettings


@dataclass
class FakeImage:
    id: str
    tags: list[str]
    engine: FakeImages

    def tag(self, repository: str, version: str) -> None:
        self.engine.move(f"{repository}:{version}", self)


@dataclass
class FakeImages:
    images: list[FakeImage] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def add(self, image_id: str, *tags: str) -> FakeImage:
        image = FakeImage(image_id, list(tags), self)
        self.images.append(image)
        return image

    def get(self, reference: str) -> FakeImage:
        for image in self.images:
            if reference in image.tags or reference == image.id:
                return image
        raise docker.errors.ImageNotFound(reference)

    def move(self, tag: str, target: FakeImage) -> None:
        for image in self.images:
            if tag in image.tags:
                image.tags.remove(tag)
        target.tags.append(tag)

    def remove(self, tag: str, noprune: bool = False) -> None:
        self.removed.append(tag)
        for image in self.images:
            if tag in image.tags:
                image.tags.remove(tag)


@dataclass
class FakeClient:
    images: FakeImages


def test_retag_drops_only_this_repository_s_superseded_tags(tmp_path: Path) -> None:
    """Another repository's tags of the superseded image (another test run's) are kept."""
    images = FakeImages()
    images.add(
        "sha256:old",
        "grader-env/env-a:latest",
        "grader-env/env-a:0123",
        "grader-env-other/env-a:latest",
        "grader-env-other/env-a:0123",
    )
    images.add("sha256:new", "grader-env/env-a:4567")
    builder = ImageBuilder(FakeClient(images), ImageSettings(root=tmp_path))  # type: ignore[arg-type]
    builder._retag("sha256:new", "grader-env/env-a:latest")
    assert images.removed == ["grader-env/env-a:0123"]
    assert images.get("grader-env/env-a:latest").id == "sha256:new"
    assert images.get("grader-env-other/env-a:latest").id == "sha256:old"
    assert images.get("grader-env-other/env-a:0123").id == "sha256:old"
