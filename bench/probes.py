"""What bench.isolated observes besides the host's CPU: frame counts and attributed CPU.

On a host shared with other tenants the host-wide CPU (``/proc/stat``, background
subtracted) is meaningless once the cores are saturated: our work only displaces theirs.
``AttributedCpu`` counts what is ours alone: the CPU of our sandbox containers (their
cgroup's ``cpuacct.usage``, read while they live) and of our own processes (this one, and
the API, worker and Redis sessions for HTTP). The engine's CPU (dockerd, containerd, the
shims, fuse-overlayfs) is not in it: those processes serve every tenant.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import docker
import structlog

from grader.sandbox.containers import LABEL_DEPLOYMENT

ISOLATED_EVENT = "sandbox_isolated_run"
"""The worker's log line of an isolated run, with the relay's frame counts."""
CGROUP_USAGE = (
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",  # v1, cgroupfs driver
    "/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage",  # v1, systemd
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class FrameLog:
    """Keeps each thread's ``sandbox_isolated_run`` log events; other events under warning drop."""

    def __init__(self) -> None:
        self._events: dict[int, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def processor(
        self, _logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event.get("event") == ISOLATED_EVENT:
            with self._lock:
                self._events.setdefault(threading.get_ident(), []).append(dict(event))
        if method not in ("warning", "error", "critical", "exception"):
            raise structlog.DropEvent
        return event

    def pop(self) -> dict[str, Any] | None:
        """The last such event of the calling thread, if any (the run it just made)."""
        with self._lock:
            events = self._events.pop(threading.get_ident(), [])
        return events[-1] if events else None

    def install(self) -> None:
        structlog.configure(
            processors=[self.processor, structlog.dev.ConsoleRenderer(colors=False)],
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            cache_logger_on_first_use=False,
        )


def _cgroup_usage(container_id: str) -> int | None:
    for pattern in CGROUP_USAGE:
        with contextlib.suppress(OSError, ValueError):
            return int(Path(pattern.format(id=container_id)).read_text())
    return None


def session_cpu_seconds(sessions: set[int]) -> float:
    """utime + stime of every live process whose session id is in ``sessions``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) in sessions:  # fields[0] is the state: session is field 6
                total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class AttributedCpu:
    """CPU-seconds of this deployment's sandbox containers plus our own processes.

    A thread lists the deployment's containers every ``list_every`` seconds and reads each
    one's cgroup counter every ``interval`` seconds; a removed container keeps its last
    reading (what it used between that reading and its exit is missed: its harness has
    reported by then). Containers that never got listed (alive under ``list_every``) are
    missed too; ours live over a second.
    """

    def __init__(self, deployment: str, interval: float = 0.05, list_every: float = 0.25) -> None:
        self.deployment = deployment
        self.interval = interval
        self.list_every = list_every
        self.sessions: set[int] = set()
        """Session ids of our service processes (each started in its own session)."""
        self._last: dict[str, int] = {}
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="attributed-cpu", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def containers_seconds(self) -> float:
        self._read()
        with self._lock:
            return sum(self._last.values()) / 1e9

    def reading(self) -> tuple[float, float]:
        """(containers CPU-s, our processes CPU-s) so far; compare two readings."""
        processes = time.process_time() + session_cpu_seconds(self.sessions)
        return self.containers_seconds(), processes

    def _poll(self) -> None:
        client = docker.from_env(timeout=30)
        listed = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() - listed >= self.list_every:
                    listed = time.monotonic()
                    with contextlib.suppress(Exception):
                        found = client.api.containers(
                            all=True, filters={"label": f"{LABEL_DEPLOYMENT}={self.deployment}"}
                        )
                        with self._lock:
                            self._live |= {str(c["Id"]) for c in found}
                self._read()
                self._stop.wait(self.interval)
        finally:
            client.close()

    def _read(self) -> None:
        with self._lock:
            live = list(self._live)
        for container_id in live:
            usage = _cgroup_usage(container_id)
            with self._lock:
                if usage is None:
                    self._live.discard(container_id)
                else:
                    self._last[container_id] = max(usage, self._last.get(container_id, 0))


def frames_from_log(text: str) -> list[tuple[int, int]]:
    """(frames to the learner, frames to the judge) of each isolated run in a JSON-lines log."""
    found = []
    for line in text.splitlines():
        if ISOLATED_EVENT not in line:
            continue
        start = line.find("{")
        try:
            entry = json.loads(line[start:]) if start >= 0 else None
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("event") != ISOLATED_EVENT:
            continue
        to_learner, to_judge = entry.get("frames_to_learner"), entry.get("frames_to_judge")
        if type(to_learner) is int and type(to_judge) is int:
            found.append((to_learner, to_judge))
    return found


def event_counts(text: str) -> dict[str, int]:
    """How many lines of each structlog ``event`` a JSON-lines log holds (diagnostics)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("event"), str):
            counts[entry["event"]] = counts.get(entry["event"], 0) + 1
    return dict(sorted(counts.items()))
