"""The seccomp filter that keeps signals off PID 1: its program, evaluated here instruction by
instruction, and the installed filter in a forked process (no Docker)."""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import signal
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images" / "harness"))

from grader_harness import sigguard

ALLOW = sigguard.SECCOMP_RET_ALLOW
SILENT = sigguard.SECCOMP_RET_ERRNO | 0
EPERM = sigguard.SECCOMP_RET_ERRNO | errno.EPERM


def evaluate(machine: str, nr: int, args: tuple[int, ...] = (), arch: int | None = None) -> int:
    """Run the classic-BPF program on one ``struct seccomp_data``; return its verdict."""
    words = list(args) + [0] * (6 - len(args))
    data = struct.pack(
        "<iIQ6Q", nr, sigguard.AUDIT_ARCH[machine] if arch is None else arch, 0, *words
    )
    prog, pc, acc = sigguard.program(machine), 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == sigguard.BPF_LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == sigguard.BPF_JEQ_K:
            pc += jt if acc == k else jf
        elif code == sigguard.BPF_JGE_K:
            pc += jt if acc >= k else jf
        elif code == sigguard.BPF_RET_K:
            return k
        pc += 1


@pytest.mark.parametrize("machine", sorted(sigguard.SYSCALLS))
@pytest.mark.parametrize("name", sigguard.PID_FIRST)
def test_a_signal_aimed_at_pid_1_is_dropped_silently(machine: str, name: str) -> None:
    """kill, tkill, tgkill and both sigqueueinfo calls at PID 1 'succeed' without effect."""
    nr = sigguard.SYSCALLS[machine][name]
    assert evaluate(machine, nr, (1, signal.SIGKILL)) == SILENT
    assert evaluate(machine, nr, (1, 1, signal.SIGKILL)) == SILENT


@pytest.mark.parametrize("machine", sorted(sigguard.SYSCALLS))
@pytest.mark.parametrize("pid", [0, 2, 57, 2**32 - 1])  # -1 (every process but init) too
def test_signals_to_other_processes_pass(machine: str, pid: int) -> None:
    """Any other pid, a process group or -1 is the kernel's to decide."""
    assert evaluate(machine, sigguard.SYSCALLS[machine]["kill"], (pid, signal.SIGKILL)) == ALLOW


@pytest.mark.parametrize("machine", sorted(sigguard.SYSCALLS))
def test_pidfd_send_signal_and_f_setsig_are_refused(machine: str) -> None:
    """A pidfd (from /proc/1) and F_SETSIG (any signal as SIGIO) are refused with EPERM."""
    numbers = sigguard.SYSCALLS[machine]
    assert evaluate(machine, numbers["pidfd_send_signal"], (3, signal.SIGKILL)) == EPERM
    assert evaluate(machine, numbers["fcntl"], (3, sigguard.F_SETSIG, signal.SIGKILL)) == EPERM
    assert evaluate(machine, numbers["fcntl"], (3, fcntl.F_GETFL)) == ALLOW


def test_another_abi_is_refused() -> None:
    """i386 and x32 system calls cannot reach kill by another number."""
    i386 = 0x40000003
    assert evaluate("x86_64", 37, (1, signal.SIGKILL), arch=i386) == EPERM
    assert evaluate("x86_64", sigguard.X32_SYSCALL_BIT | 62, (1, signal.SIGKILL)) == EPERM


def test_an_unknown_architecture_installs_nothing() -> None:
    """Where the syscall numbers are unknown, install says so instead of guessing."""
    assert sigguard.install("riscv64") is False


@pytest.mark.skipif(platform.machine() not in sigguard.SYSCALLS, reason="no filter here")
def test_the_installed_filter_refuses_f_setsig_and_keeps_other_calls() -> None:
    """In a forked process with the filter: F_SETSIG is EPERM; fcntl and kill(self, 0) work."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            assert sigguard.install() is True
            r, _ = os.pipe()
            fcntl.fcntl(r, fcntl.F_GETFL)
            os.kill(os.getpid(), 0)
            try:
                fcntl.fcntl(r, sigguard.F_SETSIG, signal.SIGKILL)
            except PermissionError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
