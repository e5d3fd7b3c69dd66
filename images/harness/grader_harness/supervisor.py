"""The trusted half of the harness: PID 1 of the sandbox container.

It makes itself non-dumpable (so a same-uid snippet cannot open ``/proc/1/fd/*`` or ptrace it),
reads one submission from stdin, forks a child for the snippet with stdout, stderr, a report
pipe and a compile pipe of its own, enforces the output caps and the wall deadline, kills
every leftover process, and writes one report on the container's stdout, which no other
process in the container holds. The child compiles every file before anything executes (under
the run's limits) and says so on the compile pipe, which it closes before the snippet runs.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time

from . import child
from .capture import Capture, Stream
from .cases import run_cases
from .protocol import (
    ISOLATED_MODES,
    MAX_CHILD_REPORT_BYTES,
    MAX_COMPILE_REPORT_BYTES,
    PROTOCOL_VERSION,
    WORKDIR,
)
from .relay import Relay
from .submission import HarnessError, Job, compile_files, parse_job, read_submission, write_files
from .warmup import preimport

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PR_SET_DUMPABLE = 4


def make_non_dumpable() -> None:
    """Hide our /proc entries and refuse ptrace from same-uid processes."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def emit(event: dict[str, Any]) -> None:
    """Write one JSON line on fd 1, the channel only this process holds."""
    write_out((json.dumps(event, separators=(",", ":")) + "\n").encode())


def write_out(data: bytes) -> None:
    """Write ``data`` whole on fd 1."""
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


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


def supervise(
    job: Job, leftover: bytes = b"", *, stdin: str | None = None, wall: float | None = None
) -> dict[str, Any]:
    """Fork the child, capture its pipes and exit, and return the report fields.

    The child reads ``stdin`` (the job's own when None) and runs for at most ``wall`` seconds
    (the job's limit when None). In the isolated modes the child also gets a frame pipe each
    way, relayed through our stdin and stdout (``leftover``: what stdin already held after
    the submission line).
    """
    stdin_fd = stdin_descriptor(job.stdin if stdin is None else stdin)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    cmp_r, cmp_w = os.pipe()
    rpc: tuple[int, int, int, int] | None = None
    if job.mode in ISOLATED_MODES:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        rpc = (to_child_r, from_child_w, to_child_w, from_child_r)
    entry_path = os.path.join(WORKDIR, job.entry)
    snippet_files = frozenset(os.path.join(WORKDIR, n) for n in job.files if n.endswith(".py"))
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        try:
            keep: tuple[int, ...] = (rep_w, cmp_w)
            read_ends: tuple[int, ...] = (out_r, err_r, rep_r, cmp_r)
            if rpc is not None:
                keep, read_ends = keep + rpc[:2], read_ends + rpc[2:]
            _prepare_child(stdin_fd, out_w, err_w, keep, read_ends)
            code = _compile_or_exit(job, cmp_w)
            channel = rpc[:2] if rpc is not None else None
            child.main(
                job.mode, entry_path, code, snippet_files, job.state, rep_w, channel, job.modules
            )
        finally:
            os._exit(70)
    for fd in (stdin_fd, out_w, err_w, rep_w, cmp_w) + (rpc[:2] if rpc is not None else ()):
        os.close(fd)
    relay = None
    if rpc is not None:
        relay = Relay(child_out=rpc[3], child_in=rpc[2], emit=write_out, leftover=leftover)
    capture = Capture(
        pid,
        Stream(out_r, job.stdout_cap),
        Stream(err_r, job.stderr_cap),
        Stream(rep_r, MAX_CHILD_REPORT_BYTES),
        Stream(cmp_r, MAX_COMPILE_REPORT_BYTES),
        relay,
    )
    return _observe(job.wall_seconds if wall is None else wall, pid, started, capture)


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


def _compile_or_exit(job: Job, fd: int) -> Any:
    """Compile in the child, before any snippet code runs; say how it went, then close ``fd``.

    The first line on the compile pipe is written before the snippet can run, so only that
    line is believed; a compile failure ends the child here.
    """
    code, failure = compile_files(job)
    data = (json.dumps({"syntax_error": failure}, separators=(",", ":")) + "\n").encode()
    view = memoryview(data[:MAX_COMPILE_REPORT_BYTES])
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)
    if failure is not None:
        os._exit(1)
    return code


def _prepare_child(
    stdin_fd: int, out_w: int, err_w: int, keep: tuple[int, ...], read_ends: tuple[int, ...]
) -> None:
    """Wire the child's descriptors, environment and signals before any snippet code runs."""
    for fd in read_ends:
        os.close(fd)
    os.dup2(stdin_fd, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (stdin_fd, out_w, err_w):
        if fd > 2:
            os.close(fd)
    low = 3
    for fd in sorted(keep):  # close everything else we inherited
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
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


def _observe(wall: float, pid: int, started: float, capture: Capture) -> dict[str, Any]:
    """Watch the child to its end or a broken limit, kill every process left, describe the run."""
    status, timed_out, output_limit = capture.watch(pid, started + wall)
    kill_everything_else()
    if status is None:
        _, status = os.waitpid(pid, 0)
    # Every writer is dead now: drain what is buffered in the pipes, then close them.
    capture.close()
    reap()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    failure = capture.compile_failure()
    return {
        "status": "syntax_error" if failure is not None else "completed",
        "syntax_error": failure,
        "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "output_limit_exceeded": output_limit,
        "wall_seconds": round(wall, 6),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 6),
        "max_rss_kib": usage.ru_maxrss,
        **capture.fields(),
        "memory": cgroup_memory(),
        **({"relay": capture.relay.fields()} if capture.relay is not None else {}),
    }


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
        submission, leftover = read_submission()
        job = parse_job(submission)
        write_files(job.files)
        report["mode"] = job.mode
        report.update(
            run_cases(job, supervise, cgroup_memory) if job.cases else supervise(job, leftover)
        )
    except HarnessError as exc:
        report["status"] = "harness_error"
        report["error"] = str(exc)
    except Exception as exc:
        report["status"] = "harness_error"
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["harness_seconds"] = round(time.monotonic() - started, 6)
    emit(report)
    return 0
