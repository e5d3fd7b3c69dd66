"""What every variant shares: samples, phases, the closed-loop load generator, host CPU.

A *phase* is one variant running one workload at one concurrency: ``concurrency`` threads
each submit, wait for the result, and submit again (a closed loop) until the phase has at
least ``min_count`` results and its ``duration`` has passed (or ``max_count`` is reached).
Throughput is completed submissions divided by the wall time from the first start to the
last finish. Host CPU is read from ``/proc/stat`` around the phase (see ``CpuMeter``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROC_STAT = Path("/proc/stat")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

PACED_GAP = 0.25
"""Idle seconds before every paced arrival, the same for every variant. On this kind of host
each process hop pays milliseconds of wake-up after an idle spell (a Redis GET: 0.07 ms hot,
3-6 ms after 0.2-0.5 s idle), so arrivals must follow the same quiet gap in every variant, or
whichever variant's ``between`` ends busiest looks fastest."""


@dataclass
class Sample:
    """One submission as the variant saw it."""

    latency: float
    ok: bool
    peak_bytes: int | None = None
    pool_hit: bool | None = None
    error: str | None = None
    parts: dict[str, float] = field(default_factory=dict)
    """Where the time went, when the variant can tell (seconds; see each variant)."""


@dataclass(frozen=True)
class PhasePlan:
    """How many submissions one phase makes: at least ``min_count``, for ``duration`` s."""

    concurrency: int
    min_count: int
    max_count: int
    duration: float
    paced: bool = False
    """One at a time, ``Variant.between`` before each arrival (see ``PACED_GAP``)."""


@dataclass
class PhaseResult:
    """The measurements of one phase."""

    concurrency: int
    samples: list[Sample]
    wall_seconds: float
    cpu_seconds: float
    cpu_window_seconds: float

    @property
    def ok_latencies(self) -> list[float]:
        return sorted(s.latency for s in self.samples if s.ok)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    @property
    def throughput(self) -> float:
        done = sum(1 for s in self.samples if s.ok)
        return done / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def cpu_per_submission(self) -> float | None:
        return self.cpu_seconds / len(self.samples) if self.samples else None

    @property
    def peak_mib(self) -> float | None:
        peaks = sorted(s.peak_bytes for s in self.samples if s.peak_bytes)
        return percentile(peaks, 50) / 2**20 if peaks else None

    @property
    def pool_hit_ratio(self) -> float | None:
        hits = [s.pool_hit for s in self.samples if s.pool_hit is not None]
        return sum(hits) / len(hits) if hits else None

    def summary(self) -> dict[str, Any]:
        latencies = self.ok_latencies
        return {
            "concurrency": self.concurrency,
            "submissions": len(self.samples),
            "errors": self.errors,
            "p50_s": percentile(latencies, 50) if latencies else None,
            "p95_s": percentile(latencies, 95) if latencies else None,
            "mean_s": sum(latencies) / len(latencies) if latencies else None,
            "throughput_per_s": self.throughput,
            "wall_s": self.wall_seconds,
            "host_cpu_s": self.cpu_seconds,
            "cpu_window_s": self.cpu_window_seconds,
            "host_cpu_s_per_submission": self.cpu_per_submission,
            "peak_mib_p50": self.peak_mib,
            "pool_hit_ratio": self.pool_hit_ratio,
            "samples": [asdict(s) for s in self.samples],
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list (numpy's default method)."""
    if not values:
        raise ValueError("no values")
    rank = (len(values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def host_busy_seconds() -> float:
    """CPU-seconds the whole host has spent not idle since boot, summed over every core.

    From the first line of ``/proc/stat``: user + nice + system + irq + softirq (guest time
    is already inside user); idle, iowait and steal (time the hypervisor gave to others)
    are not counted.
    """
    fields = PROC_STAT.read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """Host CPU-seconds over a window: everything on the machine, daemons and containers too."""

    started: float = field(default_factory=host_busy_seconds)
    started_at: float = field(default_factory=time.monotonic)

    def stop(self) -> tuple[float, float]:
        """(CPU-seconds, wall seconds) since the meter started."""
        return host_busy_seconds() - self.started, time.monotonic() - self.started_at


def background_rate(seconds: float) -> float:
    """Host CPU-seconds per second while the benchmark does nothing (other tenants, daemons)."""
    meter = CpuMeter()
    time.sleep(seconds)
    cpu, wall = meter.stop()
    return cpu / wall


class Stopped(Exception):
    """The run is being interrupted; phases stop taking new submissions."""


def closed_loop(
    submit: Callable[[], Sample],
    plan: PhasePlan,
    *,
    stop: threading.Event,
    on_sample: Callable[[Sample], None],
) -> tuple[list[Sample], float]:
    """Run ``plan`` with ``submit``; return the samples and the wall time of the phase."""
    lock = threading.Lock()
    samples: list[Sample] = []
    started = 0
    begin = time.monotonic()
    deadline = begin + plan.duration
    last_end = begin

    def worker() -> None:
        nonlocal started, last_end
        while not stop.is_set():
            with lock:
                enough = started >= plan.min_count and time.monotonic() >= deadline
                if enough or started >= plan.max_count:
                    return
                started += 1
            t0 = time.monotonic()
            try:
                sample = submit()
            except Exception as exc:
                sample = Sample(
                    time.monotonic() - t0, ok=False, error=f"{type(exc).__name__}: {exc}"
                )
            with lock:
                samples.append(sample)
                last_end = max(last_end, time.monotonic())
            on_sample(sample)

    threads = [
        threading.Thread(target=worker, name=f"load-{i}", daemon=True)
        for i in range(plan.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.2)  # a timeout keeps Ctrl-C deliverable to the main thread
    if stop.is_set():
        raise Stopped
    return samples, last_end - begin
