"""Top-level ``grader`` command: one sub-command group per concern."""

from __future__ import annotations

import logging
import sys

import structlog
import typer

from .challenges import challenges_app
from .deploy import deploy_app
from .images import images_app
from .keys import keys_app
from .remote import result, run, submit

app = typer.Typer(
    name="grader",
    help="Sandboxed code-execution grader for Python challenges.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at write time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@app.callback()
def _configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show informational logs"),
) -> None:
    """Logs go to stderr so that stdout stays for results (``--json``)."""
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


app.add_typer(images_app, name="images")
app.add_typer(challenges_app, name="challenges")
app.add_typer(keys_app, name="keys")
app.add_typer(deploy_app, name="deploy")
app.command("submit")(submit)
app.command("run")(run)
app.command("result")(result)
