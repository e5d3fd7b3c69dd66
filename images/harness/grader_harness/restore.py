"""Reuse mode: after a run, return the container to the state it was ready in, and prove it.

Only the supervisor (PID 1) does this, and only after every other process in the container is
dead: the snippet cannot have touched the supervisor's memory (non-dumpable, no ``ptrace``,
signals ignored), and with nobody left alive nobody can race the cleanup. What a run can leave
behind lives in the three writable tmpfs mounts, the IPC namespace, the network namespace's
sockets and processes; ``restore`` clears each, ``verify`` then checks each against the
pristine state recorded by ``Pristine.record`` before the first run. Anything it cannot prove
clean is a problem, and a problem ends the container (the worker discards it).

POSIX message queues cannot be listed without mounting ``mqueue`` (a capability we drop), so
reuse containers run under a seccomp profile that refuses ``mq_open`` instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import stat
import time

from .protocol import WORKDIR

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WRITABLE = (WORKDIR, "/tmp", "/dev/shm")  # noqa: S108  the container's own tmpfs mounts
"""Every path the sandbox uid can write (the root file system is read-only)."""
MQUEUE = "/dev/mqueue"
"""POSIX message queues (``mq_open`` is refused in reuse containers; checked all the same)."""
SYSV_IPC = ("shm", "msg", "sem")
SOCKET_TABLES = ("unix", "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "packet")
MEMORY_USAGE = "/sys/fs/cgroup/memory/memory.usage_in_bytes"
MEMORY_SLACK_BYTES = 16 * 1024 * 1024
"""How far above its pristine usage the memory cgroup may be after a restore (page cache)."""
_IPC_RMID = 0
_KILL_ROUNDS = 200


class Pristine:
    """What the container looked like when it first became ready."""

    __slots__ = ("fds", "memory", "mode", "owner", "sockets")

    def __init__(self) -> None:
        self.fds: list[str] = []
        self.sockets: dict[str, list[str]] = {}
        self.memory: int | None = None
        self.mode = 0o40700
        self.owner = (os.getuid(), os.getgid())

    def record(self) -> None:
        """Remember our descriptors and the memory cgroup's usage (after the warm-up)."""
        self.fds = _own_fds()
        self.memory = _read_int(MEMORY_USAGE)
        self.sockets = _sockets()


def restore(spare: int) -> list[str]:
    """Kill every process but us and ``spare`` (the zygote), empty the writable mounts, remove
    IPC objects; the problems met."""
    problems = kill_all_others(spare)
    for root in WRITABLE:
        problems += empty_directory(root)
    problems += remove_sysv_ipc()
    for name in _listdir(MQUEUE):
        try:
            os.unlink(os.path.join(MQUEUE, name))
        except OSError as exc:
            problems.append(f"{MQUEUE}/{name}: {exc.strerror}")
    return problems


def verify(pristine: Pristine, spare: int, spare_state: str | None) -> list[str]:
    """Every difference from the pristine container that ``restore`` should have removed.

    ``spare`` is the zygote: it must be the one other process, waiting (state ``S``).
    """
    problems: list[str] = []
    others = _other_pids(spare)
    if others:
        problems.append(f"processes left: {others[:10]}")
    if spare_state != "S":
        problems.append(f"the zygote is {spare_state or 'gone'}")
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:
        problems.append(f"the supervisor has {len(threads)} threads")
    problems += _verify_mounts(pristine)
    for kind in SYSV_IPC:
        rows = _table(f"/proc/sysvipc/{kind}")
        if rows:
            problems.append(f"SysV {kind} objects left: {len(rows)}")
    if _listdir(MQUEUE):
        problems.append(f"POSIX message queues left: {_listdir(MQUEUE)[:10]}")
    sockets = _sockets()
    if sockets != pristine.sockets:
        problems.append(f"sockets changed: {sockets} (was {pristine.sockets})")
    fds = _own_fds()
    if fds != pristine.fds:
        problems.append(f"supervisor descriptors changed: {fds} (was {pristine.fds})")
    memory = _read_int(MEMORY_USAGE)
    if (
        pristine.memory is not None
        and memory is not None
        and memory > pristine.memory + MEMORY_SLACK_BYTES
    ):
        problems.append(f"memory cgroup at {memory} bytes (pristine {pristine.memory})")
    return problems


def _verify_mounts(pristine: Pristine) -> list[str]:
    problems = []
    for root in WRITABLE:
        info = os.lstat(root)
        if info.st_mode != pristine.mode or (info.st_uid, info.st_gid) != pristine.owner:
            problems.append(f"{root}: mode {oct(info.st_mode)} owner {info.st_uid}:{info.st_gid}")
        left = os.listdir(root)
        if left:
            problems.append(f"{root} not empty: {sorted(left)[:10]}")
    return problems


def kill_all_others(spare: int) -> list[str]:
    """As PID 1, SIGKILL every process but ``spare`` until none is left, reaping each one."""
    for _ in range(_KILL_ROUNDS):
        for pid in _other_pids(spare):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap()
        if not _other_pids(spare):
            return []
        time.sleep(0.002)  # a process in uninterruptible sleep dies when it wakes
    return [f"processes survived SIGKILL: {_other_pids(spare)[:10]}"]


def empty_directory(root: str) -> list[str]:
    """Remove everything under ``root`` without following a link, whatever its permissions."""
    problems: list[str] = []
    try:
        os.chmod(root, 0o700)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        return [f"{root}: {exc}"]
    try:
        _empty(fd, root, problems)
    finally:
        os.close(fd)
    return problems


def _empty(fd: int, where: str, problems: list[str]) -> None:
    for name in os.listdir(fd):
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                os.chmod(name, 0o700, dir_fd=fd)  # a directory; no link can be followed here
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    _empty(sub, f"{where}/{name}", problems)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        except OSError as exc:
            problems.append(f"{where}/{name}: {exc.strerror}")


def remove_sysv_ipc() -> list[str]:
    """Remove every SysV shared memory segment, message queue and semaphore set."""
    libc = ctypes.CDLL(None, use_errno=True)
    remove = {
        "shm": lambda ident: libc.shmctl(ident, _IPC_RMID, None),
        "msg": lambda ident: libc.msgctl(ident, _IPC_RMID, None),
        "sem": lambda ident: libc.semctl(ident, 0, _IPC_RMID),
    }
    problems: list[str] = []
    for kind in SYSV_IPC:
        for row in _table(f"/proc/sysvipc/{kind}"):
            ident = int(row.split()[1])
            if remove[kind](ident) != 0:
                problems.append(f"SysV {kind} {ident}: errno {ctypes.get_errno()}")
    return problems


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _other_pids(spare: int) -> list[int]:
    me = os.getpid()
    return [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in (me, spare)]


def _sockets() -> dict[str, list[str]]:
    """The inode and path of every socket in the container's network namespace, per table."""
    found: dict[str, list[str]] = {}
    for table in SOCKET_TABLES:
        rows = _table(f"/proc/net/{table}")
        if table == "unix":  # Num RefCount Protocol Flags Type St Inode [Path]
            found[table] = sorted(" ".join(row.split()[6:]) for row in rows)
        elif rows:
            found[table] = sorted(rows)
    return found


def _own_fds() -> list[str]:
    fds = []
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            fds.append(f"{name}:{os.readlink(f'/proc/self/fd/{name}')}")
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
    return fds


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _table(path: str) -> list[str]:
    """The rows of a ``/proc`` table after its header line (none when it cannot be read)."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return [line for line in handle.read().splitlines()[1:] if line.strip()]
    except OSError:
        return []


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def summary(problems: list[str]) -> dict[str, Any]:
    """The fields of the supervisor's ``ready`` event after a restore."""
    return {"verified": not problems, "problems": [p[:300] for p in problems[:20]]}
