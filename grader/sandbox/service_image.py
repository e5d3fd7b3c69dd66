"""The service image (API, worker and Redis in the compose stack), built offline too.

Its base is bootstrapped like the environments' but also carries ``redis-server``; its venv
comes from host-downloaded wheels against ``images/service/requirements.lock``; the code
(``grader``, ``worker``, ``challenges``, environment manifests) is copied in.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from ..constants import (
    LABEL_INPUTS_HASH,
    LABEL_ROLE,
    SERVICE_BASE_PACKAGES,
    SERVICE_BASE_TAG,
    SERVICE_DIR,
)
from .base_image import Progress
from .images import ImageBuilder, copy_wheels

_SOURCES = ("grader", "worker", "challenges")
_PYTHON = "3.11"


def _sources(repo: Path) -> list[Path]:
    files = []
    for top in _SOURCES:
        files += [
            p for p in (repo / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    files += sorted((repo / "images").glob("*/environment.toml"))
    files += sorted((repo / "images").glob("*/requirements.lock"))
    files += sorted((repo / "images").glob("*/Dockerfile"))
    files += sorted((repo / "images").glob("*.Dockerfile"))
    files += [repo / "pyproject.toml"]
    return sorted(files)


def service_inputs_hash(repo: Path, base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    folder = repo / "images" / SERVICE_DIR
    for path in [folder / "Dockerfile", folder / "requirements.lock", *_sources(repo)]:
        data = path.read_bytes()
        digest.update(f"{path.relative_to(repo)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def build_service_image(
    builder: ImageBuilder,
    repo: Path,
    *,
    tag_repo: str,
    force: bool = False,
    progress: Progress = lambda _: None,
) -> tuple[str, bool]:
    """Build ``<tag_repo>:latest`` unless current; return its id and whether it was built."""
    base = builder.find(SERVICE_BASE_TAG)
    base_id = (
        str(base.id)
        if base is not None
        else builder.bootstrap_base(SERVICE_BASE_TAG, progress, packages=SERVICE_BASE_PACKAGES)
    )
    inputs = service_inputs_hash(repo, base_id)
    latest = f"{tag_repo}:latest"
    current = builder.find(latest)
    if (
        not force
        and current is not None
        and (current.labels or {}).get(LABEL_INPUTS_HASH) == inputs
    ):
        progress("service image up to date")
        return str(current.id), False
    folder = repo / "images" / SERVICE_DIR
    wheels = builder.download_locked("service", folder / "requirements.lock", _PYTHON, progress)
    with tempfile.TemporaryDirectory(prefix="grader-ctx-service-") as tmp:
        context = Path(tmp)
        shutil.copy2(folder / "Dockerfile", context / "Dockerfile")
        shutil.copy2(folder / "requirements.lock", context / "requirements.lock")
        copy_wheels(wheels, context / "wheels")
        app = context / "app"
        for path in _sources(repo):
            target = app / path.relative_to(repo)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        image_id = builder.docker_build(
            "service",
            context,
            tag=f"{tag_repo}:{inputs[:12]}",
            latest=latest,
            buildargs={"BASE": base_id},
            labels={LABEL_ROLE: "service", LABEL_INPUTS_HASH: inputs},
            progress=progress,
        )
    return image_id, True
