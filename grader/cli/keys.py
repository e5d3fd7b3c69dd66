"""``grader keys``: make API keys. Only their SHA-256 is ever configured or stored."""

from __future__ import annotations

import json
import secrets
from typing import Annotated

import typer
from rich.console import Console

from ..api.security import hash_key, new_key
from ..domain.submission import Role

keys_app = typer.Typer(
    help="Make API keys (shown once; only hashes are stored).", no_args_is_help=True
)
console = Console(stderr=True)


@keys_app.command("new")
def new(
    key_id: Annotated[str, typer.Option("--id", help="A name for the key, e.g. the platform")],
    role: Annotated[Role, typer.Option(help="submitter, instructor or admin")] = Role.SUBMITTER,
    webhook_secret: Annotated[bool, typer.Option(help="Also make a webhook secret")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Print a new key and the entry to add to GRADER_API__KEYS."""
    raw = new_key()
    entry: dict[str, object] = {"id": key_id, "sha256": hash_key(raw), "role": role.value}
    if webhook_secret:
        entry["webhook_secret"] = secrets.token_urlsafe(32)
    if as_json:
        typer.echo(json.dumps({"key": raw, "entry": entry}))
        return
    console.print(f"API key (shown once, give it to the client): [bold]{raw}[/]")
    console.print("Add this entry to GRADER_API__KEYS (a JSON list):")
    typer.echo(json.dumps(entry))
