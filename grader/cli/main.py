"""Top-level ``grader`` command: one sub-command group per concern."""

from __future__ import annotations

import typer

from .challenges import challenges_app
from .deploy import deploy_app
from .images import images_app
from .keys import keys_app

app = typer.Typer(
    name="grader",
    help="Sandboxed code-execution grader for Python challenges.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(images_app, name="images")
app.add_typer(challenges_app, name="challenges")
app.add_typer(keys_app, name="keys")
app.add_typer(deploy_app, name="deploy")
