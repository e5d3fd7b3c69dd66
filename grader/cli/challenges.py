"""``grader challenges``: validate challenge files by executing them; compare environments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..domain.challenge import Challenge
from ..domain.environment import discover
from ..domain.limits import resolve_limits
from ..domain.loader import LoadResult, read_challenges
from ..domain.observation import Limits
from ..domain.sandbox import Sandbox
from ..domain.validation import DEFAULT_RUNS, ChallengeReport, MatrixRow, matrix_row, validate
from ..errors import GraderError
from ..sandbox import DockerSandbox
from ..settings import Settings, get_settings
from .push import push_command

challenges_app = typer.Typer(help="Validate challenges by execution.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()

Paths = Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: challenges/)")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
Runs = Annotated[
    int,
    typer.Option(
        "--runs",
        min=1,
        help="Run each code this many times; a challenge whose outcome differs is refused",
    ),
]


@contextmanager
def docker_sandbox(settings: Settings, environments: list[str]) -> Iterator[Sandbox]:
    """The same Docker sandbox the worker runs submissions in, with a small warm pool."""
    sandbox = DockerSandbox.from_settings(settings.sandbox, repository=settings.images.repository)
    sandbox.start_pool(environments, size=1, limits=settings.sandbox.defaults)
    try:
        yield sandbox
    finally:
        sandbox.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _load(paths: list[Path] | None, settings: Settings) -> tuple[LoadResult, list[str]]:
    """Every file loaded; every problem of every file printed (literally) to stderr."""
    environments = list(discover(settings.images.root))
    result = read_challenges(paths or [Path("challenges")], environments)
    for problem in result.problems:
        _error(str(problem))
    return result, environments


def _error(message: str) -> None:
    """An error line as written: ``[a-z0-9]`` in a message is text, never rich markup."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def _not_loaded(result: LoadResult) -> str:
    files = len({p.path for p in result.problems})
    if not files:
        return ""
    return f"; {files} file{'s' if files > 1 else ''} did not load (errors above)"


@challenges_app.command("validate")
def validate_command(
    paths: Paths = None, as_json: AsJson = False, runs: Runs = DEFAULT_RUNS
) -> None:
    """Check each file, run its code and options, and prove the answer key.

    Every run is repeated ``--runs`` times: a challenge whose outcome differs between runs
    (timing, randomness) is refused, naming what differed.
    """
    settings = get_settings()
    reports: list[ChallengeReport] = []
    try:
        loaded, _ = _load(paths, settings)
        challenges = loaded.challenges
        used = sorted({e for c in challenges for e in [c.environment, *c.environments]})
        if challenges:  # when nothing loaded, no engine is needed to say so
            with docker_sandbox(settings, used) as sandbox, _progress() as progress:
                task = progress.add_task("validating", total=len(challenges))
                for challenge in challenges:
                    progress.update(task, description=challenge.qualified_id)
                    limits = _limits(settings, challenge.limits)
                    reports.append(validate(challenge, sandbox, limits, runs=runs))
                    progress.advance(task)
    except GraderError as exc:
        _error(str(exc))
        raise typer.Exit(code=1) from None
    failed = [r for r in reports if not r.ok]
    if as_json:
        out.print_json(json.dumps([{**r.model_dump(mode="json"), "ok": r.ok} for r in reports]))
    else:
        for report in reports:
            _print_report(report)
        times = "once" if runs == 1 else f"{runs} times"
        colour = "red" if failed or loaded.problems else "green"
        out.print(
            f"[bold {colour}]{len(reports) - len(failed)}/{len(reports)} challenges valid[/] "
            f"(each code and code option run {times}){_not_loaded(loaded)}",
            soft_wrap=True,  # one line, for grep
        )
    if failed or loaded.problems:
        raise typer.Exit(code=1)


def _limits(settings: Settings, overrides: dict[str, float]) -> Limits:
    return resolve_limits(settings.sandbox.defaults, settings.sandbox.maxima, overrides)


def _print_report(report: ChallengeReport) -> None:
    mark = ("✓", "green") if report.ok else ("✗", "red")
    table = Table(
        title=Text.assemble(mark, f" {report.challenge} ({report.kind})"),
        title_justify="left",
        show_header=True,
        expand=False,
    )
    for column in ("check", "environment", "result", "detail"):
        table.add_column(column)
    for check in report.checks:
        detail = Text(check.detail)
        if check.observed:
            detail.append("\n")
            detail.append_text(_observed(check.observed))
        table.add_row(
            Text(check.name),
            Text(check.environment or "-"),
            Text("ok", "green") if check.ok else Text("FAIL", "red"),
            detail,
        )
    out.print(table)


def _observed(text: str) -> Text:
    """A diff in colour (removed expected lines red, added actual lines green), else as is."""
    styled = Text()
    for line in text.splitlines(keepends=True):
        style = ""
        if line.startswith(("---", "+++")):
            style = "bold"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("@@"):
            style = "cyan"
        styled.append(line, style)
    return styled


SCHEMA_PATH = Path("challenges/schema.json")


def challenge_schema() -> str:
    """The JSON Schema of challenge files, as committed for editors."""
    schema = Challenge.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Grader challenge file"
    # The loader fills these from the path, so files may leave them out.
    schema["required"] = [name for name in schema.get("required", []) if name not in ("id", "set")]
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


@challenges_app.command("schema")
def schema_command(
    write: Annotated[bool, typer.Option("--write", help=f"Write {SCHEMA_PATH}")] = False,
) -> None:
    """Print (or write) the JSON Schema of challenge files for editor autocompletion."""
    text = challenge_schema()
    if write:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        console.print(f"wrote {SCHEMA_PATH}")
    else:
        out.print(text, end="", markup=False, highlight=False)


@challenges_app.command("matrix")
def matrix_command(paths: Paths = None, as_json: AsJson = False) -> None:
    """Run each challenge's code in every environment and show where outcomes differ."""
    settings = get_settings()
    rows: list[MatrixRow] = []
    try:
        loaded, environments = _load(paths, settings)
        challenges = loaded.challenges
        if challenges:
            with docker_sandbox(settings, environments) as sandbox, _progress() as progress:
                task = progress.add_task("matrix", total=len(challenges))
                for challenge in challenges:
                    progress.update(task, description=challenge.qualified_id)
                    row = matrix_row(
                        challenge, environments, sandbox, _limits(settings, challenge.limits)
                    )
                    if row is not None:
                        rows.append(row)
                    progress.advance(task)
    except GraderError as exc:
        _error(str(exc))
        raise typer.Exit(code=1) from None
    if as_json:
        payload = [{**r.model_dump(mode="json"), "differs": r.differs, "ok": r.ok} for r in rows]
        out.print_json(json.dumps(payload))
    else:
        table = Table(
            title="Outcomes by environment (✓ meets the recorded expectation, "
            "✗ does not, · none recorded; (kind) where truths differ in kind)",
            title_justify="left",
        )
        table.add_column("challenge")
        for environment in environments:
            table.add_column(environment)
        table.add_column("differs")
        for row in rows:
            kinds = {c.kind for c in row.cells if c.kind is not None}
            cells = [
                Text.assemble(
                    _mark(c.expected), f" {f'({c.kind}) ' if len(kinds) > 1 else ''}{c.outcome}"
                )
                for c in row.cells
            ]
            differs = Text("yes", "yellow") if row.differs else Text("no")
            table.add_row(Text(row.challenge), *cells, differs)
        out.print(table)
    if not all(r.ok for r in rows) or loaded.problems:
        if loaded.problems:
            console.print(_not_loaded(loaded).removeprefix("; ").capitalize(), markup=False)
        raise typer.Exit(code=1)


def _mark(expected: bool | None) -> tuple[str, str]:
    return {True: ("✓", "green"), False: ("✗", "red"), None: ("·", "dim")}[expected]


challenges_app.command("push")(push_command)
