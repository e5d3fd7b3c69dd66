"""The report key: keyed lines, and a key that no forked process holds (real fork, no Docker)."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images" / "harness"))

from grader_harness.reportkey import ReportKey

HEX32 = re.compile(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    os.close(fd)
    return data


def key_of(key: ReportKey) -> str:
    """The key as the worker learns it: from a keyed line."""
    r, w = os.pipe()
    key.write_line(w, b'{"event":"ready"}', fresh_line=False)
    os.close(w)
    return str(json.loads(read_all(r))["key"])


def memory_candidates_in_child(before_fork: bytes | None = None) -> tuple[set[bytes], int]:
    """Fork; the child collects every 32-hex-digit string in its readable memory."""
    held = before_fork  # a copy the fork inherits, for the control
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            found: set[bytes] = set()
            maps_path, mem_path = Path("/proc/self/maps"), Path("/proc/self/mem")
            with maps_path.open() as maps, mem_path.open("rb", 0) as mem:
                for line in maps:
                    fields = line.split()
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    if not fields[1].startswith("r") or end - start > 1 << 30:
                        continue
                    try:
                        mem.seek(start)
                        found.update(HEX32.findall(mem.read(end - start)))
                    except (OSError, ValueError, OverflowError):
                        continue
            os.write(w, b"\n".join(sorted(found)))
        finally:
            os._exit(0)
    os.close(w)
    data = read_all(r)
    _, status = os.waitpid(pid, 0)
    assert held is before_fork
    return set(data.split(b"\n")), status


def test_a_keyed_line_starts_with_the_key_and_keeps_the_body() -> None:
    """write_line puts the key first, keeps every field, and ends the line."""
    key = ReportKey()
    r, w = os.pipe()
    key.write_line(w, b'{"event":"report","n":1}')
    os.close(w)
    data = read_all(r)
    assert data.startswith(b'\n{"key":"') and data.endswith(b"}\n")
    fields = json.loads(data)
    assert re.fullmatch(r"[0-9a-f]{32}", fields.pop("key"))
    assert fields == {"event": "report", "n": 1}


def test_each_container_draws_its_own_key() -> None:
    """Two keys are never the same (16 random bytes each)."""
    assert key_of(ReportKey()) != key_of(ReportKey())


@pytest.mark.parametrize("body", [b"[]", b"{}", b"not json"])
def test_only_non_empty_objects_are_keyed(body: bytes) -> None:
    """A keyed line is a JSON object with at least one field after the key."""
    with pytest.raises(ValueError, match="non-empty JSON object"):
        ReportKey().write_line(1, body)


def test_a_forked_child_has_no_copy_of_the_key() -> None:
    """The key's mapping is not inherited, and no other copy of it is in the child's memory."""
    key = ReportKey()
    candidates, status = memory_candidates_in_child()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert len(candidates) > 0  # the scan works: other hex strings are there
    assert key_of(key).encode() not in candidates


def test_the_scan_finds_a_key_that_was_copied_before_the_fork() -> None:
    """Control: the same scan finds a key held in an ordinary bytes object at fork time."""
    key = ReportKey()
    copied = key_of(key).encode()
    candidates, _ = memory_candidates_in_child(before_fork=copied)
    assert copied in candidates


def test_the_mapping_is_gone_in_a_forked_child() -> None:
    """In a forked child the key's mapping does not exist: writing a keyed line fails with
    EFAULT after the prefix, so a child can never write (or read) the key."""
    key = ReportKey()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            key.write_line(w, b'{"event":"x"}', fresh_line=False)
        except OSError as exc:
            code = exc.errno or 0
        finally:
            os._exit(code)
    os.close(w)
    written = read_all(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == errno.EFAULT
    assert written == b'{"key":"'
