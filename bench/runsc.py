"""The runsc row (issue 13): the same runs under runc and gVisor (``runsc``), in one run.

    python -m bench.runsc            # full run, about 2 minutes on a 2-core machine
    python -m bench.runsc --quick    # smoke run, under a minute

Two strict sandboxes on the same image, one per runtime, no pool. For each workload (Q1 under
pytest, the tiny script) and each kind of run:

- ``cold``: ``DockerSandbox.run``, create, start, pre-import, run, read the report, and (in
  the CPU figure) the removal;
- ``work``: the work itself, ``execute`` in a container started (untimed) just before.

Submissions alternate between the runtimes one by one, so host drift hits both alike; each is
timed alone, with the host's CPU (``/proc/stat``) read around it. Only the ratios mean
anything. Writes bench/results/runsc.{json,md}. Images and sandboxes follow
``GRADER_IMAGES__REPOSITORY`` and ``GRADER_SANDBOX__DEPLOYMENT``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader.sandbox import DockerSandbox, PreimportProfile, connect, gvisor
from grader.settings import Settings

from .common import CpuMeter, percentile
from .variants import LIMITS, observation_ok
from .workloads import ENVIRONMENT, Workload, load_workloads

RESULTS = Path(__file__).resolve().parent / "results"
RUNTIMES = ("runc", "runsc")
KINDS = ("cold", "work")


@dataclass
class Series:
    """The samples of one runtime, workload and kind."""

    latencies: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "runs": len(self.latencies) + len(self.errors),
            "errors": self.errors,
            "p50_s": percentile(ordered, 50) if ordered else None,
            "p95_s": percentile(ordered, 95) if ordered else None,
            "cpu_s_per_run": sum(self.cpu) / len(self.cpu) if self.cpu else None,
            "latencies_s": self.latencies,
        }


def one(sandbox: DockerSandbox, workload: Workload, kind: str, series: Series) -> None:
    """One timed run of ``workload`` in ``sandbox``, added to ``series``."""
    profile = sandbox.profile_for(ENVIRONMENT, workload.request)
    ready = None
    if kind == "work":
        ready = sandbox.prestart(ENVIRONMENT, LIMITS, profile=profile)
        time.sleep(0.25)  # the same quiet gap before every timed run
    meter = CpuMeter()
    started = time.monotonic()
    try:
        if ready is not None:
            obs = sandbox.execute(ready, workload.request, LIMITS, pool_hit=True)
        else:
            obs = sandbox.run(ENVIRONMENT, workload.request, LIMITS)
        latency = time.monotonic() - started
        if ready is None:
            sandbox.drain_removals()  # the removal is part of a cold run's CPU
        cpu, _ = meter.stop()
    finally:
        if ready is not None:
            sandbox.destroy(ready)
    ok, problem = observation_ok(workload, obs)
    if ok:
        series.latencies.append(latency)
        series.cpu.append(cpu)
    else:
        series.errors.append(problem or "not ok")


def measure(runs: int) -> dict[str, Any]:
    """Every series, runtimes alternating submission by submission."""
    settings = Settings()
    if gvisor.RUNTIME not in gvisor.runtimes(connect()):
        raise SystemExit("runsc is not registered with the engine: run `make gvisor` first")
    sandboxes = {
        name: DockerSandbox.from_settings(
            settings.sandbox.model_copy(update={"runtime": None if name == "runc" else name}),
            repository=settings.images.repository,
        )
        for name in RUNTIMES
    }
    workloads = load_workloads(settings)
    series = {(r, w.key, k): Series() for r in RUNTIMES for w in workloads for k in KINDS}
    try:
        for sandbox in sandboxes.values():  # warm the engine's and the page cache's paths
            sandbox.run(ENVIRONMENT, workloads[1].request, LIMITS)
            sandbox.drain_removals()
        for index in range(runs):
            for workload in workloads:
                for kind in KINDS:
                    order = RUNTIMES if index % 2 == 0 else RUNTIMES[::-1]
                    for name in order:
                        one(sandboxes[name], workload, kind, series[(name, workload.key, kind)])
            print(f"round {index + 1}/{runs} done", file=sys.stderr, flush=True)
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    rows = []
    for workload in workloads:
        for kind in KINDS:
            runc = series[("runc", workload.key, kind)].summary()
            runsc = series[("runsc", workload.key, kind)].summary()
            rows.append(
                {
                    "workload": workload.label,
                    "kind": kind,
                    "runc": runc,
                    "runsc": runsc,
                    "p50_ratio": _ratio(runsc["p50_s"], runc["p50_s"]),
                    "cpu_ratio": _ratio(runsc["cpu_s_per_run"], runc["cpu_s_per_run"]),
                }
            )
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "cpus": _cpus()},
        "environment": ENVIRONMENT,
        "profile_q1": PreimportProfile.FULL.value,
        "runs_per_series": runs,
        "rows": rows,
    }


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def _cpus() -> int:
    return os.cpu_count() or 0


def markdown(result: dict[str, Any]) -> str:
    """The row as a table: p50 latency and host CPU per run, runc against runsc."""
    lines = [
        "# runsc (gVisor) against runc, one run",
        "",
        f"Measured {result['when']} on {result['host']['cpus']} CPUs, environment "
        f"`{result['environment']}`, {result['runs_per_series']} runs per series, the "
        "runtimes alternating run by run (`python -m bench.runsc`). `cold` is "
        "`DockerSandbox.run` without a pool (create, start, pre-import, run, report; the "
        "removal counts in its CPU); `work` is `execute` in a container started just before. "
        "CPU is the host's, per run. Only the ratios mean anything.",
        "",
        "| workload | run | runc p50 | runsc p50 | ratio | runc CPU/run | runsc CPU/run | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        runc, runsc = row["runc"], row["runsc"]
        lines.append(
            f"| {row['workload']} | {row['kind']} | {_s(runc['p50_s'])} | {_s(runsc['p50_s'])} "
            f"| {_x(row['p50_ratio'])} | {_s(runc['cpu_s_per_run'])} "
            f"| {_s(runsc['cpu_s_per_run'])} | {_x(row['cpu_ratio'])} |"
        )
    errors = [
        f"- {row['workload']} {row['kind']} {name}: {problem}"
        for row in result["rows"]
        for name in RUNTIMES
        for problem in row[name]["errors"]
    ]
    lines += ["", "Runs that did not complete correctly: " + ("none." if not errors else "")]
    lines += errors
    return "\n".join(lines) + "\n"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 runs per series instead of 10")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = measure(4 if args.quick else 10)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runsc.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "runsc.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
