"""``grader images``: build, list and lock the pinned environment images."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..constants import SERVICE_IMAGE
from ..domain.environment import Manifest, normalize, select
from ..errors import GraderError, ImageNotBuilt
from ..sandbox import ImageBuilder, build_service_image, connect
from ..settings import get_settings

images_app = typer.Typer(
    help="Build and inspect the pinned environment images.", no_args_is_help=True
)
console = Console(stderr=True)
out = Console()

BUILD_TIMEOUT = 600.0
"""Seconds one engine call may take while building (an image build is one long call)."""
Names = Annotated[list[str] | None, typer.Argument(help="Environment names (default: all)")]


def _fail(exc: GraderError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=1)


@contextmanager
def _progress(first: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the latest build line (every line is printed when not on a terminal)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as progress:
        task = progress.add_task(first, total=None)

        def report(line: str) -> None:
            progress.update(task, description=line)
            if not console.is_terminal:
                console.print(line)

        yield report


def _uv_compile(source: str, extra: list[str], python: str, rerun: str, output: Path) -> list[str]:
    """The ``uv pip compile`` command that writes a hash lock for manylinux x86_64."""
    return [
        sys.executable,
        "-m",
        "uv",
        "pip",
        "compile",
        source,
        *extra,
        "--generate-hashes",
        "--quiet",
        "--python-version",
        python,
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--custom-compile-command",
        rerun,
        "-o",
        str(output),
    ]


@images_app.command("build")
def build(
    names: Names = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date")] = False,
) -> None:
    """Build environment images offline; rebuild only when their inputs changed."""
    settings = get_settings()
    try:
        envs = select(settings.images.root, names)
        builder = ImageBuilder(connect(BUILD_TIMEOUT), settings.images)
        with _progress("base image") as report:
            base_id = builder.ensure_base(report)
            results = []
            for env in envs:
                report(f"{env.name}: checking")
                results.append(builder.build(env, base_id, force=force, progress=report))
    except GraderError as exc:
        raise _fail(exc) from None
    for result in results:
        verb = "built" if result.rebuilt else "up to date"
        out.print(f"{result.environment}: {verb} ({result.image_id[:19]})")


@images_app.command("build-service")
def build_service(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date")] = False,
) -> None:
    """Build the service image (API, worker, Redis) for docker-compose, offline."""
    settings = get_settings()
    repo = settings.images.root.parent
    try:
        builder = ImageBuilder(connect(BUILD_TIMEOUT), settings.images)
        with _progress("service image") as report:
            image_id, built = build_service_image(
                builder, repo, tag_repo=SERVICE_IMAGE, force=force, progress=report
            )
    except GraderError as exc:
        raise _fail(exc) from None
    out.print(f"{SERVICE_IMAGE}: {'built' if built else 'up to date'} ({image_id[:19]})")


@images_app.command("list")
def list_images(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Show every environment: built or not, image id, Python and package versions."""
    settings = get_settings()
    try:
        envs = select(settings.images.root, None)
        builder = ImageBuilder(connect(BUILD_TIMEOUT), settings.images)
        rows = []
        for env in envs:
            try:
                image = builder.built(env.name)
            except ImageNotBuilt:
                image = None
            rows.append((env, image))
    except GraderError as exc:
        raise _fail(exc) from None
    if as_json:
        payload = [
            {
                "name": env.name,
                "built": image is not None,
                "image_id": image.image_id if image else None,
                "python": env.manifest.python,
                "packages": {normalize(k): v for k, v in env.manifest.packages.items()},
                "locked": env.lock,
                "inputs_hash": image.inputs_hash if image else None,
            }
            for env, image in rows
        ]
        out.print_json(json.dumps(payload))
        return
    table = Table(title="Environments")
    for column in ("name", "built", "image id", "python", "packages"):
        table.add_column(column)
    for env, image in rows:
        packages = ", ".join(f"{k} {v}" for k, v in env.manifest.packages.items())
        table.add_row(
            env.name,
            "yes" if image else "[red]no[/]",
            image.image_id[7:19] if image else "-",
            env.manifest.python,
            packages,
        )
    out.print(table)


@images_app.command("lock")
def lock(names: Names = None) -> None:
    """Re-resolve each manifest's pins into a hash-locked requirements file (needs uv)."""
    settings = get_settings()
    folders = sorted(p.parent for p in settings.images.root.glob("*/environment.toml"))

    for folder in folders:
        manifest = Manifest.model_validate(tomllib.loads((folder / "environment.toml").read_text()))
        if names and manifest.name not in names:
            continue
        pins = "".join(f"{name}=={version}\n" for name, version in manifest.packages.items())
        command = _uv_compile(
            "-",
            [],
            manifest.python,
            f"grader images lock {manifest.name}",
            folder / "requirements.lock",
        )
        result = subprocess.run(command, input=pins, text=True, capture_output=True, check=False)
        if result.returncode != 0:
            console.print(f"[bold red]error:[/] locking {manifest.name}:\n{result.stderr}")
            raise typer.Exit(code=1)
        out.print(f"{manifest.name}: locked")
    if not names or "service" in names:
        repo = settings.images.root.parent
        command = _uv_compile(
            str(repo / "pyproject.toml"),
            ["--extra", "flower"],
            "3.11",
            "grader images lock",
            settings.images.root / "service" / "requirements.lock",
        )
        result = subprocess.run(command, text=True, capture_output=True, check=False)
        if result.returncode != 0:
            console.print(f"[bold red]error:[/] locking the service image:\n{result.stderr}")
            raise typer.Exit(code=1)
        out.print("service: locked")
