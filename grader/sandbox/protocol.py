"""The harness contract on the worker's side: the submission line we send, the lines we read.

The in-container half is ``images/harness/grader_harness/protocol.py`` (stdlib only); the
values both must agree on are tied by ``tests/grader/sandbox/test_contract.py``.

What comes back is hostile input, validated here and turned into an ``Observation``. Two
trust levels. The supervisor's fields (exit status, timing, captured bytes, limit flags,
syntax errors) come from PID 1's keyed lines: only lines carrying the key of its ``ready``
line are read as its own (under gVisor a snippet can write into PID 1's stdout). The
``child_report`` comes from the snippet's own process: it is validated separately and, when
malformed, only marks the run's child report invalid; it can never promote a failure into a
pass on its own.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ..constants import HARNESS_COMMAND, HARNESS_MAX_SUBMISSION_BYTES, HARNESS_PROTOCOL_VERSION
from ..domain import (
    CapturedStream,
    CollectionError,
    ExceptionInfo,
    Limits,
    RunRequest,
    StateValue,
    SyntaxErrorInfo,
    TestResult,
)
from ..domain.observation import MAX_CASES, WarningInfo
from ..errors import HarnessProtocolError, LimitsError

_MAX_TESTS = 500
MAX_SUBTESTS = 100
"""Variations kept per test (``grader_harness.protocol.MAX_SUBTESTS``)."""
MAX_WARNINGS = 100
"""As many warnings as the harness's log keeps (``grader_harness.warnlog.MAX_WARNINGS``)."""
OPTIONS_FILE = ".grader-run.json"
"""The run's options, laid out next to the snippet; the child reads and removes it first
(``grader_harness.warnlog.OPTIONS_FILE``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def harness_argv(preimport: tuple[str, ...], *, reuse: bool = False) -> list[str]:
    """The container's command: the harness, pre-importing ``preimport`` before it is ready;
    with ``reuse``, serving one run after another (restored and verified in between)."""
    return [*HARNESS_COMMAND, *(["--reuse"] if reuse else []), "--preimport", *preimport]


class HarnessLimits(_Strict):
    """The limits the supervisor enforces itself (the rest are the container's)."""

    wall_seconds: float
    stdout_bytes: int
    stderr_bytes: int


WireMode = Literal["script", "pytest", "judge", "serve"]
"""The harness's modes: a run's own, and the two halves of an isolated run."""


class HarnessSubmission(_Strict):
    """The one line the worker writes on the container's stdin."""

    version: int = HARNESS_PROTOCOL_VERSION
    mode: WireMode
    entry: str
    files: dict[str, str]
    state: list[str]
    limits: HarnessLimits
    modules: list[str] = Field(default_factory=list)
    stdin: str = ""
    cases: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, request: RunRequest, limits: Limits) -> HarnessSubmission:
        """The line for ``request``; its run options travel as ``OPTIONS_FILE``, when any.

        For an isolated request this is the judge's line (the hidden tests).
        """
        files = dict(request.files)
        options: dict[str, list[str]] = {}
        if request.filterwarnings:
            options["filterwarnings"] = list(request.filterwarnings)
        if request.test_files:
            options["paths"] = list(request.test_files)
        if options:
            files[OPTIONS_FILE] = json.dumps(options)
        learner = request.learner
        return cls(
            mode="judge" if learner is not None else request.mode.value,
            entry=request.entry,
            files=files,
            state=[] if learner is not None else list(request.state),
            limits=_limits(limits, JUDGE_MARGIN_SECONDS if learner is not None else 0.0),
            modules=list(learner.modules) if learner is not None else [],
            stdin=request.stdin if learner is None else "",
            cases=list(request.cases),
        )

    @classmethod
    def serving(cls, request: RunRequest, limits: Limits) -> HarnessSubmission:
        """The learner's line of an isolated request: their files, serving their modules."""
        learner = request.learner
        if learner is None:
            raise ValueError("not an isolated request")
        files = dict(learner.files)
        return cls(
            mode="serve",
            entry=next(name for name in files if name.endswith(".py")),
            files=files,
            state=[],
            limits=_limits(limits, 0.0),
            modules=list(learner.modules),
        )

    def line(self) -> bytes:
        """Compact JSON and a newline (``json``: lone surrogates travel as escapes).

        ``LimitsError`` when it is larger than the harness reads: it would refuse it anyway.
        """
        body = self.model_dump()
        data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
        if len(data) > HARNESS_MAX_SUBMISSION_BYTES:
            raise LimitsError(
                f"the submission takes {len(data)} bytes; a run accepts at most "
                f"{HARNESS_MAX_SUBMISSION_BYTES}"
            )
        return data


JUDGE_MARGIN_SECONDS = 2.0
"""The judge outlives the learner's wall limit by this much, so that a learner stuck past its
limit is seen as the learner's time limit, not as the judge's."""


def _limits(limits: Limits, extra_seconds: float) -> HarnessLimits:
    return HarnessLimits(
        wall_seconds=limits.wall_seconds + extra_seconds,
        stdout_bytes=limits.stdout_bytes,
        stderr_bytes=limits.stderr_bytes,
    )


ReportKeyText = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""The supervisor's per-container secret (``grader_harness/reportkey.py``)."""


class ReadyEvent(_Strict):
    """First line from the supervisor: packages imported, waiting for the submission.

    Its ``key`` starts every later line the supervisor writes; nothing else is believed.
    """

    key: ReportKeyText
    event: Literal["ready"]
    version: Literal[1]
    pid: int
    preimported: list[str]
    preimport_failed: dict[str, str]
    python: str
    reuse: bool = False
    runs: int = Field(default=0, ge=0)
    """Runs served so far; above 0 this is the line after a restore (reuse mode)."""
    verified: bool | None = None
    problems: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, max_length=20
    )


class WireStream(_Strict):
    b64: str = Field(max_length=8 * 1024 * 1024)
    bytes: int = Field(ge=0)
    truncated: bool

    def captured(self) -> CapturedStream:
        try:
            raw = base64.b64decode(self.b64, validate=True)
        except (binascii.Error, ValueError):
            raise HarnessProtocolError("captured stream is not base64") from None
        return CapturedStream(
            text=raw.decode("utf-8", "replace"), bytes=self.bytes, truncated=self.truncated
        )


class WireMemory(_Strict):
    peak_bytes: int | None = None
    oom_kills: int | None = None


class WireRelay(_Strict):
    """How many frames the supervisor relayed, and why it cut the channel, if it did."""

    frames_in: int = Field(ge=0)
    frames_out: int = Field(ge=0)
    problem: str | None = Field(default=None, max_length=500)


class WireChildEnvelope(_Strict):
    status: Literal["ok", "missing", "invalid"]
    report: dict[str, Any] | None = None
    reason: str | None = None


SummaryCategory = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class ChildReport(_Strict):
    """What the snippet's process claims. Validated, then used as observations only."""

    mode: WireMode
    exception: ExceptionInfo | None = None
    pytest_exit_code: int | None = None
    tests: list[TestResult] = Field(default_factory=list, max_length=_MAX_TESTS)
    collection_errors: list[CollectionError] = Field(default_factory=list, max_length=100)
    summary: dict[SummaryCategory, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, max_length=20
    )
    state: dict[str, StateValue] = Field(default_factory=dict)
    warnings: list[WarningInfo] = Field(default_factory=list, max_length=MAX_WARNINGS)

    @model_validator(mode="after")
    def _variations_capped(self) -> ChildReport:
        if any(len(test.subtests) > MAX_SUBTESTS for test in self.tests):
            raise ValueError(f"a test reports more than {MAX_SUBTESTS} variations")
        return self


class WireCase(_Strict):
    """One stdin case, as the supervisor observed its child (``grader_harness.cases``)."""

    ran: bool
    wall_limit: float = Field(ge=0)
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    output_limit_exceeded: bool = False
    oom_killed: bool = False
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    stdout: WireStream | None = None
    stderr: WireStream | None = None
    child_report: WireChildEnvelope | None = None


class FinalReport(_Strict):
    """The supervisor's one report line (its key is checked before: ``AttachStream.is_keyed``)."""

    key: ReportKeyText | None = None
    event: Literal["report"]
    version: Literal[1]
    status: Literal["completed", "syntax_error", "harness_error"]
    mode: WireMode | None = None
    error: str | None = None
    syntax_error: SyntaxErrorInfo | None = None
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    output_limit_exceeded: bool = False
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    max_rss_kib: int | None = None
    stdout: WireStream | None = None
    stderr: WireStream | None = None
    child_report: WireChildEnvelope | None = None
    memory: WireMemory | None = None
    relay: WireRelay | None = None
    cases: list[WireCase] | None = Field(default=None, max_length=MAX_CASES)
    harness_seconds: float


def parse_line(line: bytes, model: type[ReadyEvent] | type[FinalReport]) -> Any:
    """Parse one JSON line from the supervisor against ``model``."""
    try:
        return model.model_validate(_clean(json.loads(line)))
    except (ValueError, ValidationError, RecursionError) as exc:
        raise HarnessProtocolError(f"malformed {model.__name__}: {str(exc)[:500]}") from None


def _clean(value: Any) -> Any:
    """Replace lone surrogates (valid as JSON escapes, unencodable as UTF-8) with '?'."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value
