"""Run the benchmark of issue 6 and write bench/results/latest.{json,md,png}.

    python -m bench.run            # full run, under 10 minutes on a 2-core machine
    python -m bench.run --quick    # smoke run, about 2 minutes

Every variant runs both workloads in this one run, on the same machine and image:
lower bound, naive ``docker run``, epicbox, our runner cold and warm, and HTTP end to end.
Everything started here (containers, the epicbox worker, redis, Celery, uvicorn) is removed
or stopped on the way out, Ctrl-C and failures included.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import docker
import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .common import (
    PACED_GAP,
    CpuMeter,
    PhasePlan,
    PhaseResult,
    Sample,
    Stopped,
    background_rate,
    closed_loop,
)
from .report import SHORT, VARIANT_ORDER, Run, write_all
from .variants import IMAGE, Baseline, Cold, Epicbox, LowerBound, Reuse, Variant, Warm
from .workloads import ENVIRONMENT, Workload, load_workloads

RESULTS = Path(__file__).resolve().parent / "results"

# (concurrency, min results, max results, seconds): duration-bound, at least min results.
FULL = [PhasePlan(1, 12, 40, 8.0), PhasePlan(2, 8, 80, 6.0), PhasePlan(4, 12, 120, 6.0)]
FULL += [PhasePlan(8, 16, 160, 6.0)]
# Smoke runs skip c=2 and c=8 (n/a in the tables) to stay near two minutes.
QUICK = [PhasePlan(1, 5, 12, 2.0), PhasePlan(4, 4, 40, 2.0)]
# The lower bound needs its containers prestarted, so it runs a fixed count per phase.
LOWER_FULL = {1: 12, 2: 10, 4: 12, 8: 16}
LOWER_QUICK = {1: 5, 4: 4}
# Variants with a warm pool also run this many paced submissions (pool full at each arrival).
PACED_FULL = 12
PACED_QUICK = 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run (~2 minutes)")
    parser.add_argument(
        "--variants",
        default=",".join(k for k in VARIANT_ORDER if k != "e2e-before"),
        help=f"comma-separated subset of {','.join(VARIANT_ORDER)}",
    )
    parser.add_argument("--workloads", default="q1,script", help="comma-separated: q1,script")
    parser.add_argument("--pool-size", type=int, default=4, help="runner warm pool size")
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="Celery pool processes (HTTP e2e)"
    )
    parser.add_argument(
        "--worker-pool-size", type=int, default=2, help="warm pool size per Celery process"
    )
    parser.add_argument(
        "--paced",
        type=int,
        default=None,
        help=f"paced submissions per variant (default {PACED_FULL}, quick {PACED_QUICK})",
    )
    parser.add_argument(
        "--before",
        metavar="REPOSITORY",
        help="also run e2e-before: the HTTP path with this repository's images "
        "(built without issue 18's cut: bench/README.md)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    return parser.parse_args(argv)


Factory = tuple[type[Variant], Callable[[], Variant]]


def make_variants(args: argparse.Namespace, run_id: str, log: Any) -> list[Factory]:
    from .e2e import (  # noqa: PLC0415  imports grader.testing: lazily
        EndToEnd,
        EndToEndBefore,
        EndToEndReuse,
    )

    factories: dict[str, Factory] = {
        "lower": (LowerBound, LowerBound),
        "baseline": (Baseline, lambda: Baseline(run_id)),
        "epicbox": (Epicbox, lambda: Epicbox(run_id, log)),
        "cold": (Cold, Cold),
        "warm": (Warm, lambda: Warm(args.pool_size)),
        "e2e": (
            EndToEnd,
            lambda: EndToEnd(
                worker_concurrency=args.worker_concurrency, pool_size=args.worker_pool_size
            ),
        ),
        "e2e-before": (
            EndToEndBefore,
            lambda: EndToEndBefore(
                repository=args.before,
                worker_concurrency=args.worker_concurrency,
                pool_size=args.worker_pool_size,
            ),
        ),
        "reuse": (Reuse, lambda: Reuse(args.pool_size)),
        "e2e-reuse": (
            EndToEndReuse,
            lambda: EndToEndReuse(
                worker_concurrency=args.worker_concurrency, pool_size=args.worker_pool_size
            ),
        ),
    }
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.before:
        wanted.append("e2e-before")
    elif "e2e-before" in wanted:
        raise SystemExit("e2e-before needs --before REPOSITORY")
    unknown = sorted(set(wanted) - set(factories))
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(unknown)}")
    return [factories[key] for key in VARIANT_ORDER if key in wanted]


def image_id() -> str:
    client = docker.from_env(timeout=60)
    try:
        return str(client.images.get(IMAGE).id)
    finally:
        client.close()


def code_state() -> str:
    """The commit measured, and which tracked files differ from it (outside bench/)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, check=True
        ).stdout.decode()
        status = subprocess.run(
            ["git", "status", "--short", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    dirty = [line[3:] for line in status.splitlines() if not line[3:].startswith("bench/")]
    return head.strip() + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


def host_info() -> dict[str, Any]:
    client = docker.from_env(timeout=60)
    try:
        info = client.info()
        image = client.images.get(IMAGE)
    finally:
        client.close()
    return {
        "code": code_state(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": f"{info.get('ServerVersion')} ({info.get('Driver')} storage, "
        f"cgroup v{info.get('CgroupVersion')}, {info.get('CgroupDriver')})",
        "image": f"{IMAGE} = {str(image.id)[:19]}",
    }


def quiet_logs() -> None:
    """Only warnings from the sandbox and the pool, on stderr (rich keeps the bar intact)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


class Bench:
    """One run: every variant in turn, every workload and concurrency, with progress."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.stop = threading.Event()
        self.plans = QUICK if args.quick else FULL
        self.lower_counts = LOWER_QUICK if args.quick else LOWER_FULL
        self.paced_count = args.paced or (PACED_QUICK if args.quick else PACED_FULL)
        self.run_id = secrets.token_hex(4)
        wanted = {w.strip() for w in args.workloads.split(",")}
        self.workloads = [w for w in load_workloads() if w.key in wanted]

    def execute(self) -> Run:
        started = time.monotonic()
        run = Run(
            meta={
                "command": "python -m bench.run" + (" --quick" if self.args.quick else ""),
                "mode": "quick" if self.args.quick else "full",
                "run_id": self.run_id,
                "environment": ENVIRONMENT,
                "host": host_info(),
                "started_at": _now(),
                "image_id_start": image_id(),
            },
            workloads={w.key: w.label for w in self.workloads},
        )
        self.console.print("[dim]measuring the idle host for a few seconds...[/dim]")
        run.meta["background_cpu_start"] = background_rate(2.0 if self.args.quick else 3.0)
        factories = make_variants(self.args, self.run_id, sys.stderr)
        phases_total = len(factories) * len(self.workloads) * len(self.plans)
        phases_total += len(self.workloads) * sum(1 for kind, _ in factories if kind.paced)
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, refresh_per_second=2) as progress:
            overall = progress.add_task("all phases", total=phases_total)
            idle: list[float] = []
            for _, factory in factories:
                idle.append(background_rate(1.0))  # others' load shows up here
                self._variant(run, factory(), progress, overall)
            run.meta["background_cpu_between_variants"] = idle
        run.meta["background_cpu_end"] = background_rate(2.0 if self.args.quick else 3.0)
        run.meta["finished_at"] = _now()
        run.meta["image_id_end"] = image_id()
        if run.meta["image_id_end"] != run.meta["image_id_start"]:
            self.console.print("[red]the environment image was rebuilt during the run[/red]")
        run.meta["duration_s"] = time.monotonic() - started
        return run

    def _variant(self, run: Run, variant: Variant, progress: Progress, overall: TaskID) -> None:
        info: dict[str, Any] = {"label": variant.label, "config": {}, "error": None}
        run.variants[variant.key] = info
        task = progress.add_task(f"{SHORT[variant.key]}: starting", total=None)
        try:
            variant.start()
            info["config"] = variant.describe()
            for workload in self.workloads:
                if variant.paced:
                    run.add_paced(
                        workload.key, variant.key, self._paced(variant, workload, progress, task)
                    )
                    progress.advance(overall)
                for plan in self.plans:
                    phase = self._phase(variant, workload, plan, progress, task)
                    run.add(workload.key, variant.key, phase)
                    progress.advance(overall)
                    self._echo(variant, workload, phase)
        except (KeyboardInterrupt, Stopped):
            self.stop.set()
            raise
        except Exception as exc:
            info["error"] = f"{type(exc).__name__}: {exc}"
            self.console.print(f"[red]{SHORT[variant.key]} failed: {info['error']}[/red]")
        finally:
            progress.update(task, description=f"{SHORT[variant.key]}: cleaning up")
            try:
                variant.close()
            finally:
                progress.remove_task(task)

    def _phase(
        self,
        variant: Variant,
        workload: Workload,
        plan: PhasePlan,
        progress: Progress,
        task: TaskID,
    ) -> PhaseResult:
        if variant.key == "lower":
            count = self.lower_counts[plan.concurrency]
            plan = PhasePlan(plan.concurrency, count, count, 0.0)
        plan = variant.plan_for(plan)
        name = f"{SHORT[variant.key]} · {workload.label} · c={plan.concurrency}"
        progress.update(task, description=f"{name}: preparing", total=plan.min_count, completed=0)
        variant.before_phase(workload, plan)
        progress.update(task, description=name)

        def tick(_: Sample) -> None:
            progress.advance(task)

        meter = CpuMeter()
        samples, wall = closed_loop(
            lambda: variant.submit(workload), plan, stop=self.stop, on_sample=tick
        )
        variant.settle()
        cpu, window = meter.stop()
        progress.update(task, description=f"{name}: cleaning up")
        variant.after_phase()
        return PhaseResult(plan.concurrency, samples, wall, cpu, window)

    def _paced(
        self, variant: Variant, workload: Workload, progress: Progress, task: TaskID
    ) -> PhaseResult:
        """c=1 with the pool full at every arrival: the latency a warm pool is built for."""
        name = f"{SHORT[variant.key]} · {workload.label} · paced"
        plan = PhasePlan(1, self.paced_count, self.paced_count, 0.0, paced=True)
        progress.update(task, description=f"{name}: preparing", total=plan.min_count, completed=0)
        variant.before_phase(workload, plan)
        progress.update(task, description=name)
        samples: list[Sample] = []
        meter = CpuMeter()
        started = time.monotonic()
        busy = 0.0
        for _ in range(plan.min_count):
            if self.stop.is_set():
                raise Stopped
            variant.between()  # untimed: e.g. the pool is full again before the next arrival
            time.sleep(PACED_GAP)
            t0 = time.monotonic()
            try:
                samples.append(variant.submit(workload))
            except Exception as exc:
                samples.append(Sample(time.monotonic() - t0, False, error=f"{exc!r}"[:300]))
            busy += time.monotonic() - t0
            progress.advance(task)
        variant.settle()
        cpu, window = meter.stop()
        variant.after_phase()
        result = PhaseResult(1, samples, busy, cpu, window)
        self.console.print(
            f"  {SHORT[variant.key]:<22} {workload.label:<12} paced n={len(samples):<3} "
            f"p50={result.summary()['p50_s'] or 0:.3f}s ({time.monotonic() - started:.0f} s)"
        )
        return result

    def _echo(self, variant: Variant, workload: Workload, phase: PhaseResult) -> None:
        summary = phase.summary()
        p50 = summary["p50_s"]
        errors = f", [red]{phase.errors} errors[/red]" if phase.errors else ""
        self.console.print(
            f"  {SHORT[variant.key]:<22} {workload.label:<12} c={phase.concurrency} "
            f"n={len(phase.samples):<3} p50={'n/a' if p50 is None else f'{p50:.3f}s'} "
            f"thr={phase.throughput:.2f}/s cpu/sub={phase.cpu_per_submission or 0:.2f}s{errors}"
        )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def print_summary(console: Console, run: Run) -> None:
    for workload, label in run.workloads.items():
        table = Table(title=label)
        for column in ("variant", "p50 s", "p95 s", "thr c=1", "c=2", "c=4", "c=8", "CPU-s/sub"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        for key in VARIANT_ORDER:
            if key not in run.phases.get(workload, {}):
                continue
            cells = [run.p50(workload, key), run.p95(workload, key)]
            cells += [run.throughput(workload, key, c) for c in (1, 2, 4, 8)]
            cells += [run.cpu(workload, key)]
            table.add_row(SHORT[key], *("n/a" if v is None else f"{v:.3f}" for v in cells))
        console.print(table)
    for target in run.targets():
        value = "n/a" if target.value is None else f"{target.value:.3f}"
        line = (
            f"{run.workloads[target.workload]:<12} {SHORT[target.variant]:<20} "
            f"{target.name:<52} {value:>7} {_mark(target.met)}"
        )
        if target.back_to_back is not None:
            line += f" (back-to-back {target.back_to_back:.3f} {_mark(target.met_back_to_back)})"
        console.print(line)


def _mark(met: bool | None) -> str:
    if met is None:
        return "[yellow]not measured[/yellow]"
    return "[green]met[/green]" if met else "[red]not met[/red]"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # logs and CI: wide enough for the tables
        console = Console(width=150)
    quiet_logs()
    signal.signal(signal.SIGTERM, _terminate)
    bench = Bench(args, console)
    try:
        run = bench.execute()
    except (KeyboardInterrupt, Stopped):
        console.print("[red]interrupted: everything started was cleaned up[/red]")
        return 130
    paths = write_all(run, args.out)
    print_summary(console, run)
    for kind, path in paths.items():
        console.print(f"wrote {kind}: {path}")
    failed = [key for key, info in run.variants.items() if info.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
