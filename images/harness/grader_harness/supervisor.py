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
from .childsetup import compile_or_exit, forked_by_zygote, prepare_child
from .protocol import (
    ISOLATED_MODES,
    MAX_CHILD_REPORT_BYTES,
    MAX_COMPILE_REPORT_BYTES,
    PROTOCOL_VERSION,
    REUSABLE_MODES,
    WORKDIR,
)
from .relay import END_WAIT_SECONDS, Relay
from .reportkey import ReportKey
from .restore import Pristine, kill_all_others, restore, summary, verify
from .sigguard import install as guard_pid1
from .submission import (
    HarnessError,
    Job,
    parse_job,
    read_submission,
    stdin_descriptor,
    write_all,
    write_files,
)
from .warmup import preimport
from .zygote import Zygote

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PR_SET_DUMPABLE = 4
SETTLE_SECONDS = 1.0  # at most, for SIGKILLed processes to be gone before the report


def make_non_dumpable() -> None:
    """Hide our /proc entries and refuse ptrace from same-uid processes."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def emit(event: dict[str, Any], key: ReportKey | None = None, *, fresh_line: bool = True) -> None:
    """Write one JSON line on fd 1, keyed when there is a ``key`` (reportkey.py)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    if key is None:  # only before the key exists: no snippet can have written anything yet
        write_out(body + b"\n")
    else:
        key.write_line(1, body, fresh_line=fresh_line)


def write_out(data: bytes) -> None:
    """Write ``data`` whole on fd 1."""
    write_all(1, data)


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


def pids_limit_hits() -> int | None:
    """How many forks the container's pids limit has refused so far (cgroup ``pids.events``)."""
    for path in ("/sys/fs/cgroup/pids/pids.events", "/sys/fs/cgroup/pids.events"):
        try:
            with open(path, encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "max":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def kill_everything_else(spare: int | None = None) -> None:
    """As PID 1, SIGKILL every other process in the container (orphans, daemons).

    In reuse mode ``spare`` is the zygote, which must survive for the next run.
    """
    if spare is not None:
        kill_all_others(spare)  # its problems show in the verification after the run
        return
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap(settle: float = 0.0) -> None:
    """Collect every zombie we have inherited.

    With ``settle``, wait up to that many seconds until no process but us is left: a SIGKILLed
    process may still be finishing a write, and nothing may write on our stdout (gVisor lets a
    snippet open ``/proc/1/fd/1``) while we write the report.
    """
    deadline = time.monotonic() + settle
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)


def supervise(
    job: Job,
    leftover: bytes = b"",
    zygote: Zygote | None = None,
    *,
    stdin: str | None = None,
    wall: float | None = None,
) -> dict[str, Any]:
    """Fork the child, capture its pipes and exit, and return the report fields.

    The child reads ``stdin`` (the job's own when None) and runs for at most ``wall`` seconds
    (the job's limit when None). In the isolated modes the child also gets a frame pipe each
    way, relayed through our stdin and stdout (``leftover``: what stdin already held after
    the submission line). With a ``zygote`` (reuse mode) the zygote forks the child instead
    of this process; a job with stdin or cases never runs in a reused container (the worker
    sends it to a fresh one, removed after it), so it is forked here.
    """
    if zygote is not None and job.mode != "serve" and not job.stdin and not job.cases:
        return _supervise_from(zygote, job, leftover)
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
            prepare_child(out_w, err_w, keep, read_ends, stdin_fd)
            code = compile_or_exit(job, cmp_w)
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


def _supervise_from(zygote: Zygote, job: Job, leftover: bytes = b"") -> dict[str, Any]:
    """Reuse mode: the pristine zygote forks the child, which reads its job from a pipe.

    A ``judge`` child also gets its frame pipes; ``zygote.channel`` keeps their relay.
    """
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    cmp_r, cmp_w = os.pipe()
    theirs = [job_r, out_w, err_w, rep_w, cmp_w]
    ours: tuple[int, int] | None = None
    if job.mode == "judge":
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        theirs += [to_child_r, from_child_w]
        ours = (from_child_r, to_child_w)
    started = time.monotonic()
    pid = zygote.spawn(theirs)
    for fd in theirs:
        os.close(fd)
    write_all(job_w, job.encode())
    os.close(job_w)
    zygote.channel = None
    if ours is not None:
        zygote.channel = Relay(ours[0], ours[1], emit=write_out, leftover=leftover)
    capture = Capture(
        pid,
        Stream(out_r, job.stdout_cap),
        Stream(err_r, job.stderr_cap),
        Stream(rep_r, MAX_CHILD_REPORT_BYTES),
        Stream(cmp_r, MAX_COMPILE_REPORT_BYTES),
        zygote.channel,
    )
    return _observe(job.wall_seconds, pid, started, capture, spare=zygote.pid)


def _observe(
    limit: float, pid: int, started: float, capture: Capture, spare: int | None = None
) -> dict[str, Any]:
    """Watch the child to its end or a broken limit (``limit`` seconds), kill every process
    left (but the zygote, ``spare``), describe the run."""
    status, timed_out, output_limit = capture.watch(pid, started + limit)
    if spare is not None and status is None:  # reap the child before reaping everyone else
        os.kill(pid, signal.SIGKILL)
        _, status, capture.rusage = os.wait4(pid, 0)
    kill_everything_else(spare)
    if status is None:
        _, status, capture.rusage = os.wait4(pid, 0)
    # Every writer is dead now: drain what is buffered in the pipes, then close them.
    capture.close()
    reap(settle=0.0 if spare is not None else SETTLE_SECONDS)
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if spare is not None and capture.rusage is not None:
        usage = capture.rusage  # RUSAGE_CHILDREN adds up every run of the container
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
    """Serve one submission (``--reuse``: one after another); one report line for each.

    In reuse mode the container takes another submission only after a run that ended plainly
    and a restore whose verification found nothing (``restore.py``); otherwise it ends.
    """
    # PID 1 only receives signals it handles; ignore the ones a snippet could aim at us.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    started = time.monotonic()
    zygote: Zygote | None = None
    pristine = Pristine()
    try:
        make_non_dumpable()
        key = ReportKey()  # before any fork: no child ever maps it
        guard_pid1()  # inherited by every process forked from here on: no signal reaches us
        modules = [m for m in argv if m and not m.startswith("-")] if "--preimport" in argv else []
        failed = preimport(modules)
        ready: dict[str, Any] = {
            "event": "ready",
            "version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "preimported": [m for m in modules if m not in failed],
            "preimport_failed": failed,
            "python": sys.version.split()[0],
        }
        if "--reuse" in argv:
            zygote = Zygote(forked_by_zygote)  # forked warm, before any run's data exists
            pristine.record()
            ready["reuse"] = True
    except Exception as exc:
        emit(_harness_error(f"{type(exc).__name__}: {exc}", started))
        return 0
    emit(ready, key, fresh_line=False)
    runs = 0
    while True:
        report, plain = _serve_one(started, zygote, runs)
        emit(report, key)
        runs += 1
        if zygote is None or not plain:
            return 0
        if zygote.channel is not None and not zygote.channel.await_end(END_WAIT_SECONDS):
            return 0  # a judge's channel must end with the worker's ``end`` and nothing after
        problems = restore(zygote.pid)
        problems += verify(pristine, zygote.pid, zygote.state())
        emit({**ready, "runs": runs, **summary(problems)}, key)
        if problems:
            return 0
        started = time.monotonic()


def _serve_one(started: float, zygote: Zygote | None, runs: int) -> tuple[dict[str, Any], bool]:
    """Read one submission, run it; the report, and whether the run ended plainly."""
    report: dict[str, Any] = {"event": "report", "version": PROTOCOL_VERSION}
    try:
        oom_before = cgroup_memory()["oom_kills"] if zygote is not None else None
        pids_before = pids_limit_hits() if zygote is not None else None
        submission, leftover = read_submission()
        job = parse_job(submission)
        write_files(job.files)
        report["mode"] = job.mode
        report.update(
            run_cases(job, supervise, cgroup_memory)
            if job.cases
            else supervise(job, leftover, zygote)
        )
    except HarnessError as exc:
        return _harness_error(str(exc), started), False
    except Exception as exc:
        return _harness_error(f"{type(exc).__name__}: {exc}", started), False
    report["harness_seconds"] = round(time.monotonic() - started, 6)
    if zygote is None:
        return report, False
    memory = report.get("memory") or {}
    if runs:  # the cgroup's peak is the container's, over every run so far: not this run's
        memory["peak_bytes"] = None
    if oom_before is not None and memory.get("oom_kills") is not None:
        memory["oom_kills"] -= oom_before
    plain = (
        job.mode in REUSABLE_MODES
        and not job.stdin  # forked by this process, not the zygote: never reused
        and not job.cases
        and (not leftover or job.mode == "judge")  # a judge's early frames are its relay's
        and not (report.get("relay") or {}).get("problem")
        and report.get("status") in ("completed", "syntax_error")
        and report.get("exit_code") is not None
        and report.get("signal") is None
        and not report.get("timed_out")
        and not report.get("output_limit_exceeded")
        and not memory.get("oom_kills")
        and pids_limit_hits() == pids_before  # a fork refused at the pids limit is a limit hit
        and (report["status"] == "syntax_error" or report["child_report"]["status"] == "ok")
    )
    return report, plain


def _harness_error(error: str, started: float) -> dict[str, Any]:
    return {
        "event": "report",
        "version": PROTOCOL_VERSION,
        "status": "harness_error",
        "error": error,
        "harness_seconds": round(time.monotonic() - started, 6),
    }
