"""The report key: a per-container secret that marks the supervisor's own lines on stdout.

Only PID 1 should write the container's stdout, but under gVisor (``runsc``) a same-uid snippet
can open ``/proc/1/fd/1`` for writing, so "a line on stdout" proves nothing there. Every line
the supervisor writes therefore starts with ``{"key":"<32 hex digits>",``. The key is sent once,
in the ``ready`` line, before any submission (and so any snippet code) exists in the container;
the worker then believes only lines that carry it and ignores the rest.

The key never exists in a snippet's process: it is drawn from ``/dev/urandom`` straight into an
anonymous mapping marked ``MADV_DONTFORK`` (a forked child does not have that mapping at all)
and hex-encoded in place, never held in a Python ``bytes`` or ``str`` that a fork would copy.
The snippet cannot read it elsewhere either: PID 1's memory (``/proc/1/mem``, ``ptrace``,
``process_vm_readv``) is closed to it under both runtimes, and its stdout cannot be opened for
reading (runc: ``EACCES`` on ``/proc/1/fd``; runsc: ``EBADF`` on read).
"""

from __future__ import annotations

import mmap
import os

KEY_BYTES = 16
HEX_DIGITS = b"0123456789abcdef"
_RAW = slice(0, KEY_BYTES)
_HEX = slice(KEY_BYTES, 3 * KEY_BYTES)


class ReportKey:
    """The secret in a mapping no fork inherits, and the writing of keyed lines on fd 1."""

    __slots__ = ("_region", "_view")

    def __init__(self) -> None:
        self._region = mmap.mmap(-1, mmap.PAGESIZE)
        # Before anything is written into it: a child forked later has no such mapping.
        self._region.madvise(mmap.MADV_DONTFORK)
        self._view = memoryview(self._region)
        fd = os.open("/dev/urandom", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.readv(fd, [self._view[_RAW]]) != KEY_BYTES:
                raise OSError("short read from /dev/urandom")
        finally:
            os.close(fd)
        view = self._view
        for i in range(KEY_BYTES):
            view[KEY_BYTES + 2 * i] = HEX_DIGITS[view[i] >> 4]
            view[KEY_BYTES + 2 * i + 1] = HEX_DIGITS[view[i] & 0x0F]
        view[_RAW] = bytes(KEY_BYTES)

    def write_line(self, fd: int, body: bytes, *, fresh_line: bool = True) -> None:
        """Write the JSON object ``body`` on ``fd`` as one keyed line.

        ``fresh_line`` starts with a newline, which ends whatever partial line a snippet may
        have left in the channel, so that the keyed line is read whole.
        """
        if not body.startswith(b"{") or body == b"{}":
            raise ValueError("a keyed line is a non-empty JSON object")
        rest = memoryview(body)[1:]
        for part in (b"\n" if fresh_line else b"", b'{"key":"', self._view[_HEX], b'",', rest):
            _write_all(fd, part)
        _write_all(fd, b"\n")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
