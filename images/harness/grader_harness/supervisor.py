"""The trusted half of the harness: PID 1 of the sandbox container.

It makes itself non-dumpable (so a same-uid snippet cannot open ``/proc/1/fd/*`` or ptrace it),
reads one submission from stdin, compiles it (a syntax error ends the run before anything
executes), forks a child for the snippet with stdout, stderr and a report pipe of its own,
enforces the output caps and the wall deadline, kills every leftover process, and writes one
report on the container's stdout, which no other process in the container holds.
"""

from __future__ import annotations

import base64
import ctypes
import importlib
import json
import os
import resource
import select
import signal
import sys
import time

from . import child
from .protocol import (
    MAX_CHILD_REPORT_BYTES,
    MAX_REPORT_DEPTH,
    MAX_SUBMISSION_BYTES,
    PROTOCOL_VERSION,
    SUPPORTED_MODES,
    WORKDIR,
)

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PR_SET_DUMPABLE = 4
_READ_CHUNK = 65536


class HarnessError(Exception):
    """The submission or the sandbox is not usable; reported as ``harness_error``."""


class Stream:
    """One captured pipe with a byte cap."""

    __slots__ = ("cap", "data", "fd", "open", "total")

    def __init__(self, fd: int, cap: int) -> None:
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.open = True

    def feed(self, chunk: bytes) -> bool:
        """Keep what fits under the cap; return True once the cap is exceeded."""
        self.total += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        return self.total > self.cap


def make_non_dumpable() -> None:
    """Hide our /proc entries and refuse ptrace from same-uid processes."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def emit(event: dict[str, Any]) -> None:
    """Write one JSON line on fd 1, the channel only this process holds."""
    data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def read_submission() -> dict[str, Any]:
    """Read one newline-terminated JSON object from fd 0, capped."""
    buf = bytearray()
    while b"\n" not in buf:
        chunk = os.read(0, _READ_CHUNK)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_SUBMISSION_BYTES:
            raise HarnessError(f"submission larger than {MAX_SUBMISSION_BYTES} bytes")
    line = bytes(buf).split(b"\n", 1)[0]
    if not line.strip():
        raise HarnessError("no submission on stdin")
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise HarnessError(f"submission is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HarnessError("submission is not a JSON object")
    return value


class Job:
    """A validated submission."""

    __slots__ = ("entry", "files", "mode", "state", "stderr_cap", "stdout_cap", "wall_seconds")

    def __init__(
        self,
        mode: str,
        entry: str,
        files: dict[str, str],
        state: list[str],
        wall_seconds: float,
        stdout_cap: int,
        stderr_cap: int,
    ) -> None:
        self.mode = mode
        self.entry = entry
        self.files = files
        self.state = state
        self.wall_seconds = wall_seconds
        self.stdout_cap = stdout_cap
        self.stderr_cap = stderr_cap


def parse_job(raw: dict[str, Any]) -> Job:
    """Check the submission's shape; the worker built it, but we check anyway."""
    if raw.get("version") != PROTOCOL_VERSION:
        raise HarnessError(f"unsupported protocol version {raw.get('version')!r}")
    mode = raw.get("mode")
    if mode not in SUPPORTED_MODES:
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
    limits = raw.get("limits", {})
    try:
        wall = float(limits.get("wall_seconds", 5.0))
        stdout_cap = int(limits.get("stdout_bytes", 65536))
        stderr_cap = int(limits.get("stderr_bytes", 65536))
    except (TypeError, ValueError, AttributeError):
        raise HarnessError("limits must be numbers") from None
    return Job(str(mode), str(entry), dict(files), list(state), wall, stdout_cap, stderr_cap)


def _safe_name(name: object) -> bool:
    if not isinstance(name, str) or not name or len(name) > 100:
        return False
    parts = name.split("/")
    return all(p and p not in (".", "..") and p.isprintable() for p in parts)


def write_files(files: dict[str, str]) -> None:
    """Lay the submission out under the tmpfs work directory."""
    for name, text in files.items():
        path = os.path.join(WORKDIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)


def compile_files(job: Job) -> tuple[Any, dict[str, Any] | None]:
    """Compile every Python file; return the entry's code or the first syntax error."""
    entry_code = None
    for name, text in job.files.items():
        if not name.endswith(".py"):
            continue
        path = os.path.join(WORKDIR, name)
        try:
            code = compile(text, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # ValueError: source with NUL bytes
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
        "message": str(exc),
        "file": name,
        "line": None,
        "offset": None,
        "end_line": None,
        "end_offset": None,
        "text": "",
    }


def cgroup_memory() -> dict[str, int | None]:
    """Peak memory and OOM-kill count of the container, where the cgroup shows them."""
    peak = _read_int("/sys/fs/cgroup/memory/memory.max_usage_in_bytes")
    if peak is None:
        peak = _read_int("/sys/fs/cgroup/memory.peak")
    oom_kills = None
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path, encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        oom_kills = int(value)
            break
        except (OSError, ValueError):
            continue
    return {"peak_bytes": peak, "oom_kills": oom_kills}


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def kill_everything_else() -> None:
    """As PID 1, SIGKILL every other process in the container (orphans, daemons)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap() -> None:
    """Collect every zombie we have inherited."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def supervise(job: Job, code: Any) -> dict[str, Any]:
    """Fork the child, capture its pipes and exit, and return the report fields."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    entry_path = os.path.join(WORKDIR, job.entry)
    snippet_files = frozenset(os.path.join(WORKDIR, n) for n in job.files if n.endswith(".py"))
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        try:
            _prepare_child(out_w, err_w, rep_w, (out_r, err_r, rep_r))
            child.main(job.mode, entry_path, code, snippet_files, job.state, rep_w)
        finally:
            os._exit(70)
    for fd in (out_w, err_w, rep_w):
        os.close(fd)
    return _watch(
        job,
        pid,
        started,
        Stream(out_r, job.stdout_cap),
        Stream(err_r, job.stderr_cap),
        Stream(rep_r, MAX_CHILD_REPORT_BYTES),
    )


def _prepare_child(out_w: int, err_w: int, rep_w: int, read_ends: tuple[int, ...]) -> None:
    """Wire the child's descriptors, environment and signals before any snippet code runs."""
    for fd in read_ends:
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (devnull, out_w, err_w):
        if fd > 2:
            os.close(fd)
    os.closerange(3, rep_w)
    os.closerange(rep_w + 1, 1 << 16)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    try:  # if memory runs out, the snippet's process is the one to go
        with open("/proc/self/oom_score_adj", "w", encoding="ascii") as handle:
            handle.write("1000")
    except OSError:
        pass
    os.chdir(WORKDIR)
    os.environ.clear()
    os.environ.update({"HOME": WORKDIR, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    sys.dont_write_bytecode = True
    sys.argv = [os.path.join(WORKDIR, "main.py")]
    sys.path.insert(0, WORKDIR)
    # Line-buffered, as on a terminal, so prints and raw writes keep their order.
    sys.stdout = open(
        1,
        "w",
        encoding="utf-8",
        errors="backslashreplace",
        closefd=False,
        buffering=1,
    )
    sys.stderr = open(
        2,
        "w",
        encoding="utf-8",
        errors="backslashreplace",
        closefd=False,
        buffering=1,
    )
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.__stdout__, sys.__stderr__, sys.__stdin__ = sys.stdout, sys.stderr, sys.stdin  # type: ignore[misc]


def _watch(
    job: Job, pid: int, started: float, out: Stream, err: Stream, rep: Stream
) -> dict[str, Any]:
    deadline = started + job.wall_seconds
    timed_out = False
    output_limit = False
    status: int | None = None
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    poller = select.poll()
    streams = {s.fd: s for s in (out, err, rep)}
    for fd in streams:
        poller.register(fd, select.POLLIN | select.POLLHUP)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    while status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        timeout_ms = int(min(remaining, 0.05 if pidfd is None else remaining) * 1000) + 1
        for fd, _ in poller.poll(timeout_ms):
            if fd == pidfd:
                continue
            if _drain_once(streams[fd], poller) and fd != rep.fd:
                output_limit = True
        if output_limit:
            break
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
    kill_everything_else()
    if status is None:
        _, status = os.waitpid(pid, 0)
    # Every writer is dead now: drain what is buffered in the pipes, then close them.
    for stream in streams.values():
        while stream.open and _drain_once(stream, None, block=False) is not None:
            pass
        if stream.open:
            os.close(stream.fd)
    if pidfd is not None:
        os.close(pidfd)
    reap()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "output_limit_exceeded": output_limit,
        "wall_seconds": round(wall, 6),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 6),
        "max_rss_kib": usage.ru_maxrss,
        "stdout": _encode(out),
        "stderr": _encode(err),
        "child_report": _child_report(rep),
        "memory": cgroup_memory(),
    }


def _drain_once(stream: Stream, poller: select.poll | None, block: bool = True) -> bool | None:
    """Read one chunk; return whether the cap was exceeded, or None at EOF."""
    if not stream.open:
        return None
    if not block:
        os.set_blocking(stream.fd, False)
    try:
        chunk = os.read(stream.fd, _READ_CHUNK)
    except BlockingIOError:
        return None
    if not chunk:
        stream.open = False
        if poller is not None:
            poller.unregister(stream.fd)
        os.close(stream.fd)
        return None
    return stream.feed(chunk)


def _encode(stream: Stream) -> dict[str, Any]:
    return {
        "b64": base64.b64encode(bytes(stream.data)).decode("ascii"),
        "bytes": stream.total,
        "truncated": stream.total > stream.cap,
    }


def _child_report(stream: Stream) -> dict[str, Any]:
    if stream.total == 0:
        return {"status": "missing"}
    if stream.total > stream.cap:
        return {"status": "invalid", "reason": "child report over the size cap"}
    try:
        value = json.loads(bytes(stream.data))
    except (ValueError, RecursionError):
        return {"status": "invalid", "reason": "child report is not JSON"}
    if not isinstance(value, dict):
        return {"status": "invalid", "reason": "child report is not an object"}
    if _depth(value) > MAX_REPORT_DEPTH:
        return {
            "status": "invalid",
            "reason": f"child report nested deeper than {MAX_REPORT_DEPTH}",
        }
    return {"status": "ok", "report": value}


def _depth(value: object) -> int:
    """Nesting depth of parsed JSON, measured without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def preimport(modules: list[str]) -> dict[str, str]:
    """Import the environment's packages so the forked child starts warm."""
    failed: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    if "pytest" in modules and "pytest" not in failed:
        try:
            warm_pytest()
        except Exception as exc:
            failed["pytest-warmup"] = f"{type(exc).__name__}: {exc}"
    return failed


WARMUP_TEST = """
import pytest

@pytest.mark.asyncio
async def test_async():
    assert [1] == [1]

def test_sync():
    assert True
"""


def warm_pytest() -> None:
    """Run one session of our own fixed tests so the child's first session is fast.

    pytest loads its plugins, entry points and assertion rewriter lazily on the first
    ``pytest.main`` (about 0.2 s here); doing that before the fork moves the cost off the
    submission's path. No snippet code is involved. Nothing may reach fd 1, the report
    channel, so both standard descriptors point at /dev/null meanwhile.
    """
    import shutil  # here: with bz2 and lzma it costs a bare container's start-up ~11 ms

    import pytest

    from .pytest_plugin import QuietTerminal, pytest_args

    folder = "/tmp/grader-warmup"  # noqa: S108  the container's private tmpfs
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "test_grader_warmup.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(WARMUP_TEST)
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        pytest.main(pytest_args(path, folder), plugins=[QuietTerminal()])
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
        sys.modules.pop("test_grader_warmup", None)
        shutil.rmtree(folder, ignore_errors=True)
        _drop_event_loop()


def _drop_event_loop() -> None:
    """Close any event loop the warm-up left set: the child must start without one.

    Its selector and self-pipe descriptors would be closed in the child anyway, leaving a
    broken loop for the snippet's ``asyncio.get_event_loop()``.
    """
    import asyncio
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            loop = None
    if loop is not None and not loop.is_closed():
        loop.close()
    asyncio.set_event_loop(None)
    gc.collect()


def main(argv: list[str]) -> int:
    """Serve exactly one submission; always write one report line."""
    # PID 1 only receives signals it handles; ignore the ones a snippet could aim at us.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    started = time.monotonic()
    report: dict[str, Any] = {"event": "report", "version": PROTOCOL_VERSION}
    try:
        make_non_dumpable()
        modules = [m for m in argv if m and not m.startswith("-")] if "--preimport" in argv else []
        failed = preimport(modules)
        emit(
            {
                "event": "ready",
                "version": PROTOCOL_VERSION,
                "pid": os.getpid(),
                "preimported": [m for m in modules if m not in failed],
                "preimport_failed": failed,
                "python": sys.version.split()[0],
            }
        )
        job = parse_job(read_submission())
        write_files(job.files)
        code, syntax = compile_files(job)
        report["mode"] = job.mode
        if syntax is not None:
            report["status"] = "syntax_error"
            report["syntax_error"] = syntax
        else:
            report["status"] = "completed"
            report.update(supervise(job, code))
    except HarnessError as exc:
        report["status"] = "harness_error"
        report["error"] = str(exc)
    except Exception as exc:
        report["status"] = "harness_error"
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["harness_seconds"] = round(time.monotonic() - started, 6)
    emit(report)
    return 0
