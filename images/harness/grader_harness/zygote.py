"""Reuse mode: a pristine process that forks each run's child, so no run inherits another's memory.

After a run, PID 1's heap still holds freed copies of that run's code and output; a child
forked from it could read them in its own address space. So in reuse mode PID 1 forks the
zygote once, right after the warm-up and before any run, and never forks a snippet again. For
each run, PID 1 passes the child's pipe ends to the zygote (descriptors only, never a run's
data); the zygote forks the child, forks its own successor and exits. Both become PID 1's
children, so the snippet's parent is PID 1 as in strict mode (signals at it are ignored) and
PID 1 reaps and observes it as usual. The successor waits for the next run.

The zygote runs as the sandbox uid and is alive during the run: a snippet can kill or stop it
(never read or change it: it is non-dumpable and ``ptrace`` is refused). Then the container
fails its verification and is discarded; nothing else follows from it.
"""

from __future__ import annotations

import os
import signal

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from .relay import Relay

MAX_FDS = 8
_FORK = b"fork"


class Zygote:
    """PID 1's handle on the current zygote."""

    def __init__(self, child_main: Callable[[list[int]], None]) -> None:
        import socket

        self._socket = socket
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                self.sock.close()
                _serve(theirs, child_main)
            finally:
                os._exit(0)
        theirs.close()
        self.pid = pid
        self.channel: Relay | None = None
        """The frame relay of the run just forked, when it was a judge's (isolated runs)."""

    def spawn(self, fds: list[int]) -> int:
        """Have the zygote fork a child holding ``fds``; the child's pid (now PID 1's child)."""
        self._socket.send_fds(self.sock, [_FORK], fds)
        reply = self.sock.recv(64)
        child, successor = (int(part) for part in reply.split())
        os.waitpid(self.pid, 0)  # it exits after replying: its children are ours from now on
        self.pid = successor
        return child

    def state(self) -> str | None:
        """The zygote's scheduler state (``S`` while it waits), or None when it is gone."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii", errors="replace") as handle:
                return handle.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return None


def _serve(sock: socket.socket, child_main: Callable[[list[int]], None]) -> None:
    """The zygote's loop: wait for a request, fork the child and a successor, exit."""
    import socket

    signal.signal(signal.SIGQUIT, signal.SIG_IGN)  # the child sets its own dispositions
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, len(_FORK), MAX_FDS)
        except InterruptedError:
            continue
        if message != _FORK:
            os._exit(0)  # PID 1 closed its end, or something is wrong: never guess
        child = os.fork()
        if child == 0:
            sock.close()
            child_main(fds)
            os._exit(70)
        for fd in fds:
            os.close(fd)
        successor = os.fork()
        if successor == 0:
            continue  # the successor: wait for the next run
        sock.send(f"{child} {successor}".encode())
        os._exit(0)
