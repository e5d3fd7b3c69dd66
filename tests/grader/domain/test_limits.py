"""Per-challenge limit overrides within the server's maxima."""

from __future__ import annotations

import pytest

from grader.domain import Limits, resolve_limits
from grader.errors import LimitsError

DEFAULTS = Limits()
MAXIMA = Limits(
    wall_seconds=30,
    memory_mib=1024,
    pids=256,
    tmpfs_mib=128,
    cpus=2,
    nofile=1024,
    stdout_bytes=1 << 20,
    stderr_bytes=1 << 20,
)


def test_defaults_are_the_documented_safe_values() -> None:
    """Wall 5 s, 256 MiB, 64 pids, 64 KiB per stream, 16 MiB tmpfs."""
    assert (DEFAULTS.wall_seconds, DEFAULTS.memory_mib, DEFAULTS.pids) == (5.0, 256, 64)
    assert (DEFAULTS.stdout_bytes, DEFAULTS.stderr_bytes) == (65536, 65536)
    assert DEFAULTS.tmpfs_mib == 16


def test_override_within_maxima_applies() -> None:
    """An override below the maximum replaces just that limit."""
    limits = resolve_limits(DEFAULTS, MAXIMA, {"wall_seconds": 10, "memory_mib": 512})
    assert limits.wall_seconds == 10
    assert limits.memory_mib == 512
    assert limits.pids == DEFAULTS.pids


def test_override_above_maximum_is_refused() -> None:
    """Asking for more than the server allows names the limit and the ceiling."""
    with pytest.raises(LimitsError, match=r"limit memory_mib=4096 exceeds the server maximum 1024"):
        resolve_limits(DEFAULTS, MAXIMA, {"memory_mib": 4096})


def test_unknown_limit_is_refused() -> None:
    """A misspelt limit is an error that lists the known names."""
    with pytest.raises(LimitsError, match=r"unknown limit\(s\) walltime; known: wall_seconds"):
        resolve_limits(DEFAULTS, MAXIMA, {"walltime": 3})


def test_invalid_value_is_refused() -> None:
    """A non-positive wall limit is invalid."""
    with pytest.raises(LimitsError, match=r"limit wall_seconds: Input should be greater than 0"):
        resolve_limits(DEFAULTS, MAXIMA, {"wall_seconds": 0})
