"""``grader challenges push DIR --url --key``: upload a folder of challenges to a running
service, wait for each to be validated there, and say what became of every file.

One line per file: ``published``, ``unchanged``, or ``rejected`` with the reasons (the
loader's problems with their lines, or the failed checks of the validation by execution).
Exits 1 if any file was rejected or could not be decided.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..domain.loader import challenge_files
from ..errors import ChallengeError

out = Console()
err = Console(stderr=True)
POLL_SECONDS = 20.0
"""Each long-poll of a validation (the service caps it at its ``max_wait_seconds``)."""


@dataclass
class Outcome:
    """What became of one file."""

    file: str
    status: str  # published | unchanged | rejected | error | validating
    revision: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status not in ("published", "unchanged")

    def line(self) -> Text:
        mark, style = {"published": ("✓", "green"), "unchanged": ("=", "dim")}.get(
            self.status, ("✗", "red")
        )
        text = Text.assemble((mark, style), f" {self.file}: ", (self.status, style))
        if self.revision:
            text.append(f" (revision {self.revision})")
        for reason in self.reasons:
            text.append(f"\n    {reason}")
        return text


def _target(path: Path, text: str) -> str | None:
    """``<set>/<id>`` as the loader would name the file, or None if it does not parse."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    set_name, ident = data.get("set", path.parent.name), data.get("id", path.stem)
    if not (isinstance(set_name, str) and isinstance(ident, str)) or "/" in set_name + ident:
        return None
    return f"{set_name}/{ident}"


def _error_reasons(response: httpx.Response) -> list[str]:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return [f"HTTP {response.status_code}: {response.text[:200]}"]
    problems = error.get("problems") or []
    if problems and all("line" in p for p in problems):
        return [
            f"line {p['line']}: {p['field'] + ': ' if p['field'] else ''}{p['message']}"
            for p in problems
        ]
    return [f"HTTP {response.status_code} {error.get('code')}: {error.get('message')}"]


def upload(client: httpx.Client, path: Path, shown: str) -> tuple[Outcome, dict[str, Any] | None]:
    """Send one file (PUT to its id, so a new file is created and a changed one replaced)."""
    text = path.read_text(encoding="utf-8")
    target = _target(path, text)
    headers = {"Content-Type": "application/yaml"}
    params = {"path": shown}
    if target is None:  # let the service say what is wrong, with the line
        response = client.post("/v1/challenges", params=params, content=text, headers=headers)
    else:
        response = client.put(
            f"/v1/challenges/{target}", params=params, content=text, headers=headers
        )
    if response.status_code in (200, 202):
        return Outcome(shown, "validating"), response.json()
    status = "rejected" if response.status_code == 422 else "error"
    return Outcome(shown, status, reasons=_error_reasons(response)), None


def settle(client: httpx.Client, outcome: Outcome, answer: dict[str, Any], seconds: float) -> None:
    """Wait for the revision's validation and fill in ``outcome``."""
    outcome.revision = answer["revision"]
    deadline = time.monotonic() + seconds
    report: dict[str, Any] = answer
    while report["status"] == "validating" and time.monotonic() < deadline:
        wait = max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))
        response = client.get(
            f"/v1/challenges/{answer['id']}/validation",
            params={"revision": answer["revision"], "wait": wait},
        )
        if response.status_code != 200:
            outcome.status, outcome.reasons = "error", _error_reasons(response)
            return
        report = response.json()
    status = report["status"]
    if status == "published":
        outcome.status = "published" if answer["new"] else "unchanged"
    elif status == "validating":
        outcome.reasons = [f"still validating after {seconds:.0f} s; see {answer['validation']}"]
    else:
        outcome.status = "rejected" if status == "rejected" else "error"
        if not answer["new"]:
            outcome.reasons.append("unchanged, and refused before")
        outcome.reasons += (report.get("summary") or "").splitlines()


def push_command(
    folder: Annotated[Path, typer.Argument(help="A folder of challenge files (<set>/<id>.yaml)")],
    url: Annotated[str, typer.Option("--url", envvar="GRADER_URL", help="The service's URL")],
    key: Annotated[
        str,
        typer.Option(
            "--key",
            envvar=["GRADER_API_KEY", "GRADER_KEY"],
            help="An instructor API key (or GRADER_API_KEY)",
        ),
    ],
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the validations")
    ] = 600,
) -> None:
    """Upload every challenge file of FOLDER; each is validated by execution on the service
    and published, or rejected with the reasons. Exits 1 on any rejection."""
    try:
        files = challenge_files([folder])
    except ChallengeError as exc:
        err.print(Text.assemble(("error:", "bold red"), f" {exc}"))
        raise typer.Exit(code=1) from None
    outcomes: list[Outcome] = []
    auth = {"Authorization": f"Bearer {key}"}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as client, progress:
            task = progress.add_task("uploading", total=len(files) * 2)
            pending: list[tuple[Outcome, dict[str, Any]]] = []
            for path in files:
                shown = f"{path.parent.name}/{path.name}"
                progress.update(task, description=f"uploading {shown}")
                outcome, answer = upload(client, path, shown)
                outcomes.append(outcome)
                if answer is not None:
                    pending.append((outcome, answer))
                else:
                    progress.advance(task)  # decided already: no validation to wait for
                progress.advance(task)
            deadline = time.monotonic() + timeout
            for outcome, answer in pending:
                progress.update(task, description=f"validating {outcome.file}")
                settle(client, outcome, answer, max(0.0, deadline - time.monotonic()))
                progress.advance(task)
    except httpx.HTTPError as exc:
        err.print(Text.assemble(("error:", "bold red"), f" cannot reach {url}: {exc}"))
        raise typer.Exit(code=1) from None
    for outcome in outcomes:
        out.print(outcome.line(), soft_wrap=True, highlight=False)
    failed = [o for o in outcomes if o.failed]
    out.print(
        f"{len(outcomes) - len(failed)}/{len(outcomes)} files published or unchanged",
        highlight=False,
    )
    if failed:
        raise typer.Exit(code=1)
