"""``grader deploy``: what ``make up`` needs around docker-compose (secrets, readiness)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from ..api.security import hash_key, new_key
from ..errors import GraderError
from ..sandbox import connect, gvisor

deploy_app = typer.Typer(help="Helpers for the docker-compose deployment.", no_args_is_help=True)
console = Console(stderr=True)
ENV_FILE = Path(".env")
KEY_FILE = Path(".grader-key")


@deploy_app.command("env")
def write_env(
    path: Annotated[Path, typer.Option(help="The compose env file")] = ENV_FILE,
    port: Annotated[int, typer.Option(help="Host port of the API")] = 8000,
) -> None:
    """Write the env file once, with fresh keys and secrets (never defaults)."""
    if path.exists():
        console.print(f"{path} exists: keeping its keys")
        return
    submitter, admin = new_key(), new_key()
    keys = [
        {
            "id": "platform",
            "sha256": hash_key(submitter),
            "role": "submitter",
            "webhook_secret": secrets.token_urlsafe(32),
        },
        {"id": "admin", "sha256": hash_key(admin), "role": "admin"},
    ]
    sock = Path("/var/run/docker.sock")
    socket_gid = sock.stat().st_gid if sock.exists() else 0
    lines = [
        "# Written by `grader deploy env`: fresh keys; only their hashes are here.",
        f"GRADER_API__KEYS={json.dumps(keys)}",
        f"GRADER_PORT={port}",
        f"DOCKER_GID={socket_gid}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    KEY_FILE.write_text(f"submitter={submitter}\nadmin={admin}\n", encoding="utf-8")
    KEY_FILE.chmod(0o600)
    console.print(f"wrote {path}; the raw keys are in {KEY_FILE} (mode 600), shown once below")


@deploy_app.command("wait")
def wait(
    url: Annotated[str, typer.Option(help="Base URL of the API")] = "http://127.0.0.1:8000",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz")] = 180.0,
) -> None:
    """Wait until /readyz says ready, then print where the service listens."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/readyz", timeout=3)
            if response.status_code == 200:
                break
            last = response.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(1)
    else:
        console.print(f"[bold red]not ready after {timeout:.0f}s:[/] {last}")
        raise typer.Exit(code=1)
    keys = KEY_FILE.read_text(encoding="utf-8") if KEY_FILE.exists() else ""
    submitter = next(
        (line.split("=", 1)[1] for line in keys.splitlines() if line.startswith("submitter=")),
        "<see your .grader-key>",
    )
    typer.echo(f"Grader is ready at {url}  (OpenAPI docs: {url}/docs)")
    typer.echo(f"Console: {url}/console   Seed quiz: {url}/play/async-test-mastery")
    typer.echo(f"Submitter key: {submitter}  (the admin key is in {KEY_FILE})")
    typer.echo(f'Try: curl -s -H "Authorization: Bearer {submitter}" {url}/v1/challenges')


@deploy_app.command("gvisor")
def register_gvisor(
    daemon_json: Annotated[Path, typer.Option(help="The engine's configuration")] = (
        gvisor.DAEMON_JSON
    ),
) -> None:
    """Register gVisor (runsc) with the Docker engine and reload it (root; runsc installed)."""
    try:
        changed = gvisor.register(daemon_json)
        client = connect()
        if changed or gvisor.RUNTIME not in gvisor.runtimes(client):
            gvisor.reload_engine()
        if not gvisor.wait_for_runsc(client):
            console.print("[bold red]error:[/] the engine does not list runsc after the reload")
            raise typer.Exit(code=1)
    except GraderError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    typer.echo(
        f"runsc is registered ({' '.join(gvisor.RUNSC_ARGS)}); "
        "set GRADER_SANDBOX__RUNTIME=runsc to run sandboxes under gVisor"
    )
