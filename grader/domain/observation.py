"""What a sandboxed run saw: the ``Observation``, and what a run is asked to do.

Pure data. The worker builds an ``Observation`` from the harness's report (hostile input,
validated) and from what the engine says about the container (exit, OOM kill); comparison
with a challenge's expectation happens elsewhere, on this data only.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_CASES = 50
"""Stdin cases of one run (``grader_harness.protocol.MAX_CASES``)."""


class RunMode(StrEnum):
    """How the snippet is executed."""

    SCRIPT = "script"
    PYTEST = "pytest"


class RunStatus(StrEnum):
    """Run-level outcome. ``completed`` means the run finished within every limit."""

    COMPLETED = "completed"
    SYNTAX_ERROR = "syntax_error"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    SANDBOX_ERROR = "sandbox_error"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Frozen):
    """Resource limits of one run."""

    wall_seconds: float = Field(default=5.0, gt=0)
    memory_mib: int = Field(default=256, ge=64)  # below ~48 MiB the harness cannot start
    pids: int = Field(default=64, ge=8)
    stdout_bytes: int = Field(default=64 * 1024, ge=1024)
    stderr_bytes: int = Field(default=64 * 1024, ge=1024)
    tmpfs_mib: int = Field(default=16, ge=1)
    cpus: float = Field(default=1.0, gt=0)
    nofile: int = Field(default=256, ge=32)


class LearnerCode(_Frozen):
    """The learner's half of an isolated run: their files, and the modules the tests import."""

    files: dict[str, str] = Field(min_length=1)
    modules: tuple[str, ...] = Field(min_length=1)


class RunRequest(_Frozen):
    """One snippet to run: its files, the entry file, the mode and the state to read back.

    ``filterwarnings`` are Python ``-W`` options applied to the run in order (later ones win),
    such as ``"error"`` to escalate every warning to an exception.
    ``test_files`` travel with them in the run's options file.

    With ``learner`` set the run is isolated: ``files`` are the hidden tests, run by pytest in
    a process that never executes the learner's code, and ``learner.files`` run in another
    container whose modules answer the tests' requests through a data-only channel.
    """

    mode: RunMode
    files: dict[str, str] = Field(min_length=1)
    entry: str
    state: tuple[str, ...] = ()
    filterwarnings: tuple[str, ...] = ()
    learner: LearnerCode | None = None
    test_files: tuple[str, ...] = ()
    """In pytest mode, the test files to run when there are several (else the entry alone)."""
    stdin: str = ""
    """What the snippet reads on its standard input (nothing: ``/dev/null``)."""
    cases: tuple[str, ...] = Field(default=(), max_length=MAX_CASES)
    """Script mode: run the entry once per case, each reading its own stdin, in one container
    (``Observation.cases``); the wall limit bounds them all, shared out fairly."""

    @model_validator(mode="after")
    def _cases_are_scripts(self) -> RunRequest:
        if self.cases and (self.mode is not RunMode.SCRIPT or self.stdin or self.learner):
            raise ValueError("cases run in script mode, each with its own stdin")
        return self

    tenant: str | None = None
    """Who sent it (the API key's id). In ``same-key`` reuse mode a container serves only one
    tenant's runs; it never enters the container."""


class CapturedStream(_Frozen):
    """A byte-capped output stream, decoded as UTF-8 with replacement characters."""

    text: str = ""
    bytes: int = 0
    truncated: bool = False


class ExceptionInfo(_Frozen):
    """The uncaught exception, as the snippet's process described it."""

    type: str
    message: str
    line: int | None = None
    file: str | None = None
    traceback: str = ""
    exit_code: int | str | None = None


class SyntaxErrorInfo(_Frozen):
    """A compile failure found before anything ran (observed by the trusted supervisor)."""

    type: str
    message: str
    file: str
    line: int | None = None
    offset: int | None = None
    end_line: int | None = None
    end_offset: int | None = None
    text: str = ""


class TestOutcome(StrEnum):
    """Outcome of one pytest test."""

    __test__ = False  # not a pytest test class

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    NOT_RUN = "not_run"


class SubtestResult(_Frozen):
    """One variation of a test (``unittest``'s ``subTest`` or pytest's ``subtests``)."""

    __test__ = False  # not a pytest test class

    name: str
    """The variation as pytest shows it: ``[custom message] (i=1)``, or ``(i=1)``."""
    outcome: TestOutcome
    message: str | None = None
    stdout: str = ""


class TestResult(_Frozen):
    """One pytest test as the snippet's process reported it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: TestOutcome
    message: str | None = None
    """The skip or xfail reason, or the failure or error message, as pytest shows it."""
    when: Literal["setup", "call", "teardown"] | None = None
    """The phase that decided the outcome (an error at ``setup`` or at ``teardown``)."""
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    exception: ExceptionInfo | None = None
    subtests: tuple[SubtestResult, ...] = ()
    task_id: int | None = None
    """The test's ``@pytest.mark.task(taskno=N)``, when it has one."""


class CollectionError(_Frozen):
    """A pytest collection failure (an import error in a test module, say).

    ``message`` is pytest's whole report; ``exception`` the error behind it (for an import
    error, the ``ImportError`` itself rather than pytest's wrapper).
    """

    nodeid: str
    message: str
    exception: ExceptionInfo | None = None


class WarningInfo(_Frozen):
    """A warning shown during the run, as the snippet's process recorded it.

    ``line`` and ``file`` are set when the warning points into the snippet's own files;
    ``when`` and ``nodeid`` say where pytest caught it (``config``, ``collect``, ``runtest``).
    """

    category: str
    message: str
    line: int | None = None
    file: str | None = None
    when: str | None = None
    nodeid: str | None = None


class StateStatus(StrEnum):
    """Whether a requested name had a plain JSON value after the run."""

    OK = "ok"
    MISSING = "missing"
    UNSERIALIZABLE = "unserializable"


class StateValue(_Frozen):
    """One requested variable after the run."""

    status: StateStatus
    value: Any = None
    reason: str | None = None
    type: str | None = None


class ChildReportStatus(StrEnum):
    """Whether the snippet's process delivered its own report."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


class EnvironmentRef(_Frozen):
    """Which pinned environment ran the snippet."""

    name: str
    image_id: str


class CaseRun(_Frozen):
    """One stdin case of a run: what the supervisor saw of its own child."""

    ran: bool = True
    """False when no time was left for it."""
    status: RunStatus = RunStatus.COMPLETED
    stdout: CapturedStream = CapturedStream()
    stderr: CapturedStream = CapturedStream()
    exit_code: int | None = None
    signal: int | None = None
    exception: ExceptionInfo | None = None
    """The uncaught exception, as the case's process claimed it (for messages only)."""
    wall_seconds: float | None = None
    wall_limit: float | None = None
    """The case's share of the run's wall limit."""
    cpu_seconds: float | None = None
    timed_out: bool = False
    oom_killed: bool = False
    output_limit_exceeded: bool = False


class Observation(_Frozen):
    """Everything one run produced. Run-level failures are data here, never exceptions."""

    status: RunStatus
    environment: EnvironmentRef
    mode: RunMode
    stdout: CapturedStream = CapturedStream()
    stderr: CapturedStream = CapturedStream()
    exit_code: int | None = None
    signal: int | None = None
    exception: ExceptionInfo | None = None
    syntax_error: SyntaxErrorInfo | None = None
    tests: tuple[TestResult, ...] = ()
    collection_errors: tuple[CollectionError, ...] = ()
    pytest_exit_code: int | None = None
    pytest_summary: dict[str, int] = Field(default_factory=dict)
    """Pytest's own summary counts (``{"skipped": 1, "warnings": 1}``), as it would print them."""
    warnings: tuple[WarningInfo, ...] = ()
    state: dict[str, StateValue] = Field(default_factory=dict)
    child_report: ChildReportStatus = ChildReportStatus.MISSING
    child_report_error: str | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    output_limit_exceeded: bool = False
    pool_hit: bool = False
    container_id: str | None = None
    error: str | None = None
    cases: tuple[CaseRun, ...] = ()
    """One per stdin case of the request, in order (``RunRequest.cases``)."""


# pytest's summary line ----------------------------------------------------------------------

_SUMMARY_ORDER = (
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
)
_SUMMARY_WORDS = {
    **{word: word for word in _SUMMARY_ORDER[:6]},
    **{"warning": "warnings", "warnings": "warnings", "error": "error", "errors": "error"},
}


def parse_summary(text: str) -> dict[str, int]:
    """Pytest's summary line (``1 failed, 2 passed, 1 warning``) as counts without zeros.

    ``no tests ran`` is no counts. ``ValueError`` when the text is not such a line.
    """
    if text.strip() == "no tests ran":
        return {}
    counts: dict[str, int] = {}
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d{1,6}) ([a-z]+)\s*", part)
        key = _SUMMARY_WORDS.get(match[2], "") if match else ""
        if match is None or not key or key in counts:
            raise ValueError(f"{text!r} is not a pytest summary line like '1 passed, 1 warning'")
        counts[key] = int(match[1])
    return {key: count for key, count in counts.items() if count}


def summary_lines(texts: list[str]) -> list[dict[str, int]]:
    """The texts that are pytest summary lines, as counts."""
    lines = []
    for text in texts:
        try:
            lines.append(parse_summary(text))
        except ValueError:
            continue
    return lines


def format_summary(counts: dict[str, int]) -> str:
    """Counts as pytest prints them, in its order: ``1 failed, 2 passed, 1 warning, 2 errors``.

    Categories pytest does not know itself (from plugins) come last, as pytest puts them.
    """
    keys = [key for key in _SUMMARY_ORDER if counts.get(key)]
    keys += sorted(key for key in counts if key not in _SUMMARY_ORDER and counts[key])
    plural = {"warnings": ("warning", "warnings"), "error": ("error", "errors")}
    words = [plural.get(key, (key, key))[counts[key] != 1] for key in keys]
    return ", ".join(f"{counts[k]} {w}" for k, w in zip(keys, words, strict=True)) or "no tests ran"
