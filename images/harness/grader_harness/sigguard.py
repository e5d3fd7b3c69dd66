"""A seccomp filter, installed in the child before any snippet code runs, that keeps every
signal away from PID 1 (the supervisor).

Linux never delivers a signal without a handler to a namespace's init from inside it, so under
runc ``kill(1, SIGKILL)`` is silently dropped. gVisor (``runsc``) delivers it: the supervisor
dies and the run has no report. This filter gives both runtimes Linux's semantics: a signal
aimed at PID 1 (``kill``, ``tkill``, ``tgkill``, ``rt_sigqueueinfo``, ``rt_tgsigqueueinfo``)
"succeeds" without being sent, as the kernel's init protection does. ``pidfd_send_signal``
(a pidfd can come from opening ``/proc/1``) and ``fcntl(F_SETSIG)`` (SIGIO replaced by any
signal, SIGKILL included, sent to an fd's owner) are refused with ``EPERM``; syscalls of a
foreign ABI (i386, x32) are refused too, so none of these can be reached by another number.

Filters are inherited across ``fork`` and ``execve`` and cannot be removed; ``no_new_privs``
(set by the engine's ``no-new-privileges``, and again here) lets an unprivileged process
install one.
"""

from __future__ import annotations

import ctypes
import platform
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1

# BPF opcodes (linux/bpf_common.h).
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K

# struct seccomp_data: nr (0), arch (4), instruction_pointer (8), args[6] (16 + 8 * i).
OFFSET_NR = 0
OFFSET_ARCH = 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of syscall argument ``index`` (little-endian)."""
    return 16 + 8 * index


AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
F_SETSIG = 10

# Per architecture: the signal syscalls whose first argument is a pid (or tgid), and the
# two refused outright.
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "kill": 62,
        "tkill": 200,
        "tgkill": 234,
        "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297,
        "pidfd_send_signal": 424,
        "fcntl": 72,
    },
    "aarch64": {
        "kill": 129,
        "tkill": 130,
        "tgkill": 131,
        "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240,
        "pidfd_send_signal": 424,
        "fcntl": 25,
    },
}
PID_FIRST = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter for ``machine`` (``platform.machine()``) as (code, jt, jf, k) instructions."""
    numbers = SYSCALLS[machine]
    deny = SECCOMP_RET_ERRNO | EPERM
    silent = SECCOMP_RET_ERRNO | 0  # "succeeds" without being carried out, as init's shield
    prog = [
        _stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        _jump(BPF_JEQ_K, AUDIT_ARCH[machine], 1, 0),
        _stmt(BPF_RET_K, deny),
        _stmt(BPF_LD_W_ABS, OFFSET_NR),
    ]
    if machine == "x86_64":
        prog += [_jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1), _stmt(BPF_RET_K, deny)]
    prog += [_jump(BPF_JEQ_K, numbers["pidfd_send_signal"], 0, 1), _stmt(BPF_RET_K, deny)]
    # fcntl(fd, F_SETSIG, ...): refused; every other fcntl allowed.
    prog += [
        _jump(BPF_JEQ_K, numbers["fcntl"], 0, 4),
        _stmt(BPF_LD_W_ABS, _arg_low(1)),
        _jump(BPF_JEQ_K, F_SETSIG, 0, 1),
        _stmt(BPF_RET_K, deny),
        _stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ]
    # A signal syscall whose pid (tgid, tid) is 1: dropped silently. pids are 32-bit ints.
    for name in PID_FIRST:
        prog += [
            _jump(BPF_JEQ_K, numbers[name], 0, 4),
            _stmt(BPF_LD_W_ABS, _arg_low(0)),
            _jump(BPF_JEQ_K, 1, 0, 1),
            _stmt(BPF_RET_K, silent),
            _stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        ]
    prog.append(_stmt(BPF_RET_K, SECCOMP_RET_ALLOW))
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def install(machine: str | None = None) -> bool:
    """Install the filter in this process (and every process it forks); False on an unknown
    architecture, where the kernel's own init protection (runc) is all there is."""
    machine = machine or platform.machine()
    if machine not in SYSCALLS:
        return False
    prog = program(machine)
    raw = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return True
