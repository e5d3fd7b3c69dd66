"""The submission: read from stdin (capped), validated, written under the work directory, and
compiled before anything runs, so that a syntax error ends the run with nothing executed.

Compiling happens in the snippet's own process, under the run's limits: a source built to
exhaust the compiler (deep nesting, huge expressions) costs the snippet, never PID 1.
"""

from __future__ import annotations

import json
import os
import time

from .protocol import (
    ISOLATED_MODES,
    MAX_CASES,
    MAX_SUBMISSION_BYTES,
    PROTOCOL_VERSION,
    READ_CHUNK,
    SUPPORTED_MODES,
    WORKDIR,
)

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class HarnessError(Exception):
    """The submission or the sandbox is not usable; reported as ``harness_error``."""


def read_submission() -> tuple[dict[str, Any], bytes]:
    """Read one newline-terminated JSON object from fd 0, capped; and what came after it."""
    buf = bytearray()
    while b"\n" not in buf:
        chunk = os.read(0, READ_CHUNK)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_SUBMISSION_BYTES:
            raise HarnessError(f"submission larger than {MAX_SUBMISSION_BYTES} bytes")
    line, _, rest = bytes(buf).partition(b"\n")
    if not line.strip():
        raise HarnessError("no submission on stdin")
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise HarnessError(f"submission is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HarnessError("submission is not a JSON object")
    return value, rest


class Job:
    """A validated submission."""

    __slots__ = (
        "cases",
        "entry",
        "files",
        "mode",
        "modules",
        "state",
        "stderr_cap",
        "stdin",
        "stdout_cap",
        "wall_seconds",
    )

    def __init__(
        self,
        mode: str,
        entry: str,
        files: dict[str, str],
        state: list[str],
        wall_seconds: float,
        stdout_cap: int,
        stderr_cap: int,
        modules: list[str] | None = None,
        stdin: str = "",
        cases: list[str] | None = None,
    ) -> None:
        self.modules = modules or []  # the learner's modules, in the isolated modes
        self.stdin = stdin  # the snippet's standard input
        self.cases = cases or []  # one run of the entry per stdin, sharing the wall limit
        self.mode = mode
        self.entry = entry
        self.files = files
        self.state = state
        self.wall_seconds = wall_seconds
        self.stdout_cap = stdout_cap
        self.stderr_cap = stderr_cap

    def encode(self) -> bytes:
        """The job as a submission line again (for the child of a reuse-mode run)."""
        limits = {
            "wall_seconds": self.wall_seconds,
            "stdout_bytes": self.stdout_cap,
            "stderr_bytes": self.stderr_cap,
        }
        raw = {"version": PROTOCOL_VERSION, "mode": self.mode, "entry": self.entry}
        raw.update(files=self.files, state=self.state, modules=self.modules, limits=limits)
        return json.dumps(raw, separators=(",", ":")).encode()

    @staticmethod
    def decode(data: bytes) -> Job:
        """A job from ``encode``'s bytes."""
        return parse_job(json.loads(data))


def parse_job(raw: dict[str, Any]) -> Job:
    """Check the submission's shape; the worker built it, but we check anyway."""
    if raw.get("version") != PROTOCOL_VERSION:
        raise HarnessError(f"unsupported protocol version {raw.get('version')!r}")
    mode = raw.get("mode")
    if mode not in SUPPORTED_MODES + ISOLATED_MODES:
        raise HarnessError(f"unknown mode {mode!r}")
    files = raw.get("files")
    if not isinstance(files, dict) or not files:
        raise HarnessError("files must be a non-empty object")
    for name, text in files.items():
        if not isinstance(text, str) or not _safe_name(name):
            raise HarnessError(f"bad file entry {name!r}")
    entry = raw.get("entry")
    if entry not in files:
        raise HarnessError(f"entry {entry!r} is not among the files")
    state = raw.get("state", [])
    if not isinstance(state, list) or not all(isinstance(s, str) for s in state):
        raise HarnessError("state must be a list of names")
    modules = raw.get("modules", [])
    if not isinstance(modules, list) or not all(
        isinstance(m, str) and m.isidentifier() for m in modules
    ):
        raise HarnessError("modules must be a list of module names")
    if (mode in ISOLATED_MODES) != bool(modules):
        raise HarnessError("the isolated modes, and only they, name the learner's modules")
    stdin, cases = _stdin_and_cases(raw, str(mode))
    limits = raw.get("limits", {})
    try:
        wall = float(limits.get("wall_seconds", 5.0))
        stdout_cap = int(limits.get("stdout_bytes", 65536))
        stderr_cap = int(limits.get("stderr_bytes", 65536))
    except (TypeError, ValueError, AttributeError):
        raise HarnessError("limits must be numbers") from None
    return Job(
        str(mode),
        str(entry),
        dict(files),
        list(state),
        wall,
        stdout_cap,
        stderr_cap,
        modules,
        stdin,
        list(cases),
    )


def _stdin_and_cases(raw: dict[str, Any], mode: str) -> tuple[str, list[str]]:
    """The snippet's stdin, or its stdin cases (script mode only, one stdin each)."""
    stdin = raw.get("stdin", "")
    if not isinstance(stdin, str):
        raise HarnessError("stdin must be a string")
    cases = raw.get("cases", [])
    if not isinstance(cases, list) or not all(isinstance(c, str) for c in cases):
        raise HarnessError("cases must be a list of strings (each case's stdin)")
    if len(cases) > MAX_CASES:
        raise HarnessError(f"at most {MAX_CASES} cases a run")
    if cases and (mode != "script" or stdin):
        raise HarnessError("cases run in script mode, each with its own stdin")
    return stdin, list(cases)


def _safe_name(name: object) -> bool:
    if not isinstance(name, str) or not name or len(name) > 100:
        return False
    parts = name.split("/")
    return all(p and p not in (".", "..") and p.isprintable() for p in parts)


def clear_workdir() -> None:
    """Remove everything under the work directory (what a case left), whatever its modes.

    Directories are made writable on the way down: a snippet may have made them read-only.
    """
    _quietly(lambda path: os.chmod(path, 0o700), WORKDIR)
    for top, dirs, _ in os.walk(WORKDIR, topdown=True):
        for name in dirs:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                _quietly(lambda p: os.chmod(p, 0o700), path)
    for top, dirs, names in os.walk(WORKDIR, topdown=False):
        for name in names:
            _quietly(os.unlink, os.path.join(top, name))
        for name in dirs:
            path = os.path.join(top, name)
            _quietly(os.unlink if os.path.islink(path) else os.rmdir, path)


def _quietly(remove: Any, path: str) -> None:
    try:
        remove(path)
    except OSError:
        pass


def write_files(files: dict[str, str]) -> None:
    """Lay the submission out under the tmpfs work directory."""
    for name, text in files.items():
        path = os.path.join(WORKDIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)


def compile_files(job: Job) -> tuple[Any, dict[str, Any] | None]:
    """Compile every Python file; return the entry's code or the first compile failure.

    Whatever compiling raises is the snippet's compile error: ``SyntaxError`` and its family,
    ``ValueError`` (NUL bytes), ``RecursionError`` and ``MemoryError`` (nesting too deep, an
    expression too large), ``OverflowError``.
    """
    entry_code = None
    for name, text in job.files.items():
        if not name.endswith(".py"):
            continue
        path = os.path.join(WORKDIR, name)
        try:
            code = compile(text, path, "exec", dont_inherit=True)
        except Exception as exc:  # the learner's text made the compiler fail: data, not ours
            return None, syntax_error(exc, name)
        if name == job.entry:
            entry_code = code
    return entry_code, None


def syntax_error(exc: Exception, name: str) -> dict[str, Any]:
    """Describe a compile failure the way the worker reports it."""
    if isinstance(exc, SyntaxError):
        return {
            "type": type(exc).__name__,
            "message": str(exc.msg),
            "file": name,
            "line": exc.lineno,
            "offset": exc.offset,
            "end_line": exc.end_lineno,
            "end_offset": exc.end_offset,
            "text": (exc.text or "").rstrip("\n")[:1000],
        }
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:1000] or type(exc).__name__,
        "file": name,
        "line": None,
        "offset": None,
        "end_line": None,
        "end_offset": None,
        "text": "",
    }


def stdin_descriptor(text: str) -> int:
    """A descriptor the child reads as its stdin: ``text`` in memory, or /dev/null when empty.

    A memfd (no file the snippet could find in the work directory), else an unlinked file.
    """
    if not text:
        return os.open(os.devnull, os.O_RDONLY)
    data = text.encode("utf-8", "replace")
    try:
        fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        path = os.path.join(WORKDIR, f".stdin-{os.getpid()}-{time.monotonic_ns()}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.unlink(path)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` whole on ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
