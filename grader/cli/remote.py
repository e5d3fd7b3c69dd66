"""``grader submit``, ``grader run`` and ``grader result``: the API from a shell, through
``grader.client``.

Stdout carries the JSON answer (a submission, a run, or a result in a platform's format);
stderr a one-line summary. The exit code says how it went, so scripts can branch on it:

    0  passed (a run: completed with exit code 0); submit without --wait: accepted
    1  failed: the learner's code ran and failed, hit a limit, or could not be tested
    2  error: we could not grade it, or the API refused the request (4xx, see stderr)
    3  unreachable: no answer from the API, or it stayed unavailable (503) through retries
    4  not finished: still queued or running when --wait ran out
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from ..client import ApiError, Client, PublicSubmission, RunRecord, Unreachable
from ..client.core import DEFAULT_URL as DEFAULT_API_URL
from ..domain.exporters import LADDER, ResultFormat, Standing
from ..domain.observation import RunMode, RunStatus
from ..domain.verdict import VerdictStatus

console = Console(stderr=True)


class Exit(IntEnum):
    """The exit codes of ``submit``, ``run`` and ``result`` (module docstring)."""

    PASSED = 0
    FAILED = 1
    ERROR = 2
    UNREACHABLE = 3
    PENDING = 4


Url = Annotated[
    str, typer.Option("--url", envvar="GRADER_URL", help="The API's base URL", show_default=True)
]
Key = Annotated[
    str | None,
    typer.Option("--key", envvar="GRADER_API_KEY", help="An API key (or GRADER_API_KEY)"),
]
Wait = Annotated[
    float | None,
    typer.Option("--timeout", min=0, help="With --wait: give up after this many seconds"),
]
DEFAULT_URL = DEFAULT_API_URL


def submit(
    file: Annotated[
        Path | None, typer.Argument(help="The code to submit ('-' reads stdin)", show_default=False)
    ] = None,
    challenge: Annotated[
        str, typer.Option("--challenge", "-c", help="The challenge: <set>/<id>")
    ] = "",
    choice: Annotated[
        str | None, typer.Option("--choice", help="An option label instead of code")
    ] = None,
    extra: Annotated[
        list[Path] | None,
        typer.Option(
            "--file",
            "-f",
            help="Another file beside FILE (repeatable; the challenge must allow several "
            "files): all are sent by name as 'files'",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the verdict")] = False,
    timeout: Wait = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Resubmitting with the same key returns the first"),
    ] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Submit code (or a choice) for a challenge; with --wait, exit with its verdict."""
    if not challenge:
        _usage("--challenge <set>/<id> is required")
    if (file is None) == (choice is None):
        _usage("give a FILE to submit, or --choice, not both")
    code = _read(file) if file is not None else None
    files = None
    if extra and file is not None:  # several files: FILE is the entry, sent by its name
        files = {("main.py" if str(file) == "-" else file.name): code or ""}
        files.update({path.name: _read(path) for path in extra})
        code = None
    with _api(url, key) as client:
        submission = _call(
            lambda: client.submit(
                challenge,
                code,
                files=files,
                choice=choice,
                idempotency_key=idempotency_key,
                wait=(True if timeout is None else timeout) if wait else False,
            )
        )
    _print(submission.model_dump(mode="json"))
    if not wait and not submission.final:
        console.print(f"accepted: {submission.id} ({submission.status.value})")
        raise typer.Exit(Exit.PASSED)
    raise typer.Exit(_judged(submission))


def run(
    file: Annotated[Path, typer.Argument(help="The script or test file ('-' reads stdin)")],
    env: Annotated[str, typer.Option("--env", "-e", help="The environment to run in")],
    mode: Annotated[RunMode, typer.Option("--mode", help="script or pytest")] = RunMode.SCRIPT,
    stdin: Annotated[
        Path | None, typer.Option("--stdin", help="A file whose text is the run's stdin")
    ] = None,
    extra: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="Another file to send beside it (repeatable)"),
    ] = None,
    timeout: Wait = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Run a file in an environment without a challenge; exit with how it ended."""
    entry = "main.py" if str(file) == "-" else file.name
    files = {entry: _read(file)}
    for path in extra or []:
        files[path.name] = _read(path)
    with _api(url, key) as client:
        record = _call(
            lambda: client.run(
                env,
                files,
                entry=entry,
                mode=mode,
                stdin=_read(stdin) if stdin is not None else None,
                wait=True if timeout is None else timeout,
            )
        )
    _print(record.model_dump(mode="json"))
    raise typer.Exit(_ran(record))


def result(
    submission_id: Annotated[str, typer.Argument(help="The submission's id")],
    result_format: Annotated[
        ResultFormat,
        typer.Option("--format", help="grader, exercism-v3, gradescope or prairielearn"),
    ] = ResultFormat.GRADER,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is final")] = False,
    timeout: Wait = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Print a submission's result (in a platform's format); exit with its verdict."""
    with _api(url, key) as client:
        if wait:
            submission = _call(lambda: client.wait(submission_id, timeout=timeout))
        else:
            submission = _call(lambda: client.get(submission_id))
        if result_format is ResultFormat.GRADER or not submission.final:
            document: dict[str, Any] = submission.model_dump(mode="json")
        else:
            document = _call(lambda: client.result(submission_id, format=result_format))
    _print(document)
    raise typer.Exit(_judged(submission))


# helpers ------------------------------------------------------------------------------------


@contextmanager
def _api(url: str, key: str | None) -> Iterator[Client]:
    with Client(url, key) as client:
        yield client


T = TypeVar("T")


def _call(action: Callable[[], T]) -> T:
    """``action()``; an API error or no answer ends the command with its exit code."""
    try:
        return action()
    except Unreachable as exc:
        _say("unreachable", str(exc))
        raise typer.Exit(Exit.UNREACHABLE) from None
    except ApiError as exc:
        _say(exc.code, f"HTTP {exc.status}: {exc.message}")
        raise typer.Exit(Exit.UNREACHABLE if exc.status == 503 else Exit.ERROR) from None


def _judged(submission: PublicSubmission) -> Exit:
    """The exit code of a submission, and its summary line on stderr."""
    if not submission.final:
        console.print(f"not finished: {submission.id} is {submission.status.value}")
        return Exit.PENDING
    verdict = submission.result
    if verdict is None:
        _say("failed", submission.error or "no verdict")
        return Exit.ERROR
    _say(verdict.status.value, verdict.reason)
    standing = LADDER.get(VerdictStatus(verdict.status), Standing.OURS)
    if submission.status.value == "failed" or standing is Standing.OURS:
        return Exit.ERROR
    return Exit.PASSED if standing is Standing.PASSED else Exit.FAILED


def _ran(record: RunRecord) -> Exit:
    """The exit code of a raw run, and its summary line on stderr."""
    if not record.final:
        console.print(f"not finished: run {record.id} is {record.status}")
        return Exit.PENDING
    observation = record.observation
    if record.status == "failed" or observation is None:
        _say("failed", record.error or "no observation")
        return Exit.ERROR
    if observation.status is RunStatus.SANDBOX_ERROR:
        _say("sandbox_error", observation.error or "")
        return Exit.ERROR
    code = observation.pytest_exit_code if observation.mode is RunMode.PYTEST else None
    code = observation.exit_code if code is None else code
    _say(observation.status.value, f"exit code {code}")
    completed = observation.status is RunStatus.COMPLETED
    return Exit.PASSED if completed and code == 0 else Exit.FAILED


def _read(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _usage(f"cannot read {path}: {exc}")


def _print(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _say(status: str, message: str) -> None:
    console.print(Text.assemble((status, "bold"), ": ", message), soft_wrap=True)


def _usage(message: str) -> NoReturn:
    console.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(Exit.ERROR)
