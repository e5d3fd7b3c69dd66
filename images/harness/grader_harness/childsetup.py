"""The child's side of a fork, before any snippet code runs: its descriptors, environment and
signals, and the compile step whose result it reports before the snippet can run.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from . import child
from .protocol import MAX_COMPILE_REPORT_BYTES, READ_CHUNK, WORKDIR
from .submission import Job, compile_files

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def forked_by_zygote(fds: list[int]) -> None:
    """The child of a reuse-mode run, forked by the zygote: read the job, then as usual.

    A judge's child (hidden tests) also holds its frame pipes, read and write, last.
    """
    try:
        job_r, out_w, err_w, rep_w, cmp_w = fds[:5]
        channel = (fds[5], fds[6]) if len(fds) == 7 else None
        data = bytearray()
        while chunk := os.read(job_r, READ_CHUNK):
            data += chunk
        os.close(job_r)
        job = Job.decode(bytes(data))
        if (channel is not None) != (job.mode == "judge"):
            return  # frame pipes go to a judge, and only to one: never guess
        prepare_child(out_w, err_w, (rep_w, cmp_w, *(channel or ())), ())
        code = compile_or_exit(job, cmp_w)
        entry_path = os.path.join(WORKDIR, job.entry)
        snippet_files = frozenset(os.path.join(WORKDIR, n) for n in job.files if n.endswith(".py"))
        child.main(
            job.mode, entry_path, code, snippet_files, job.state, rep_w, channel, job.modules
        )
    finally:
        os._exit(70)


def compile_or_exit(job: Job, fd: int) -> Any:
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


def prepare_child(
    out_w: int,
    err_w: int,
    keep: tuple[int, ...],
    read_ends: tuple[int, ...],
    stdin_fd: int | None = None,
) -> None:
    """Wire the child's descriptors, environment and signals before any snippet code runs.

    ``stdin_fd`` becomes its stdin (/dev/null when None). The child leads a session of its
    own: in PID 1's process group, ``kill(0, SIGKILL)`` would reach PID 1 too under gVisor
    (Linux spares a namespace's init; gVisor does not), and from another session no process
    can join that group again. Signals aimed at PID 1 itself are dropped by the seccomp filter
    PID 1 installed before forking (``sigguard.py``).
    """
    os.setsid()
    for fd in read_ends:
        os.close(fd)
    stdin = os.open(os.devnull, os.O_RDONLY) if stdin_fd is None else stdin_fd
    os.dup2(stdin, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (stdin, out_w, err_w):
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
