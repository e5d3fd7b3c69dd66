"""The q5 row of issue 12: a `tests` challenge's hidden tests graded isolated, against in-process.

    python -m bench.isolated            # full run, about 6 minutes on a 2-core machine
    python -m bench.isolated --quick    # smoke run, about 3 minutes

In one run, with q5's reference solution as the learner's code: our runner with a warm pool
grading it isolated (a fresh learner container, a reused judge), isolated as before (two fresh
containers, ``AsBefore``) and in-process (``isolated=False``, one container), paced and in a
closed loop at c=2; then the same isolated grading through HTTP end
to end (uvicorn, redis-server, a Celery worker). Writes bench/results/isolated.{json,md}.
Images and sandboxes follow ``GRADER_IMAGES__REPOSITORY`` and ``GRADER_SANDBOX__DEPLOYMENT``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import platform
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import docker

from grader.domain import compare
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.settings import Settings

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
from .e2e import EndToEnd
from .isolated_report import IsolatedRun, LoopPhase
from .isolated_report import write_all as write_results
from .probes import AttributedCpu, FrameLog, event_counts, frames_from_log
from .run import code_state
from .variants import LIMITS, Variant, Warm
from .workloads import ENVIRONMENT, Q5, Q5_ID, Workload, load_q5, q5_problem

RESULTS = Path(__file__).resolve().parent / "results"
LOOP_FULL = PhasePlan(2, 10, 60, 12.0)
LOOP_QUICK = PhasePlan(2, 4, 20, 3.0)
CONTAINERS_MEASURED = 6
"""Containers started and removed one after the other to price one container."""


class RunnerQ5(Warm):
    """``DockerSandbox.run`` with a warm pool; each answer graded as the worker grades it."""

    key = "warm"
    label = "ours: runner, warm pool"

    def __init__(
        self, q5: Q5, settings: Settings, frames: FrameLog, pool_size: int, *, judges: bool = True
    ) -> None:
        super().__init__(pool_size)
        self.q5 = q5
        reuse = settings.sandbox.reuse.model_copy(update={"judges": judges})
        sandbox = settings.sandbox.model_copy(update={"reuse": reuse})
        self.settings = settings.model_copy(update={"sandbox": sandbox})
        self.frames = frames
        self.judges = judges
        """False: isolated runs as before reused judges and ``serve`` learners (``AsBefore``)."""

    def start(self) -> None:
        kind = DockerSandbox if self.judges else AsBefore
        self.sandbox = kind.from_settings(
            self.settings.sandbox, repository=self.settings.images.repository
        )
        self.sandbox.start_pool([ENVIRONMENT], size=self.pool_size, limits=LIMITS)
        self._wait_full()

    def submit(self, workload: Workload) -> Sample:
        assert self.sandbox is not None  # noqa: S101
        self.frames.pop()  # nothing left over from an earlier, failed run of this thread
        started = time.monotonic()
        obs = self.sandbox.run(ENVIRONMENT, workload.request, LIMITS)
        latency = time.monotonic() - started
        verdict = compare(self.q5.challenge.kind, self.q5.expectation, obs)
        problem = q5_problem(verdict.model_dump(mode="json"), self.q5.tests)
        parts: dict[str, float] = {}
        if obs.wall_seconds is not None:
            parts["harness_run"] = obs.wall_seconds
        event = self.frames.pop()
        if workload.request.learner is not None and event is not None:
            parts["frames_to_learner"] = float(event["frames_to_learner"])
            parts["frames_to_judge"] = float(event["frames_to_judge"])
        return Sample(latency, problem is None, obs.peak_memory_bytes, obs.pool_hit, problem, parts)

    def settle(self) -> None:
        assert self.sandbox is not None  # noqa: S101
        self.sandbox.judges.wait_settled()  # a judge's restore belongs to its run's cost
        super().settle()

    def container_cost(self, count: int) -> PhaseResult:
        """Start (pre-imported, ``full``) and remove ``count`` containers one after the other."""
        assert self.sandbox is not None  # noqa: S101
        self._wait_full()
        samples = []
        meter = CpuMeter()
        for _ in range(count):
            started = time.monotonic()
            ready = self.sandbox.prestart(ENVIRONMENT, LIMITS, profile=PreimportProfile.FULL)
            self.sandbox.destroy(ready)
            samples.append(Sample(time.monotonic() - started, True))
        cpu, window = meter.stop()
        return PhaseResult(1, samples, window, cpu, window)

    def describe(self) -> dict[str, Any]:
        assert self.sandbox is not None  # noqa: S101
        judges = self.sandbox.judges
        return {
            "pool_size": self.pool_size,
            "limits": LIMITS.model_dump(),
            "judges_reused": self.judges,
            "judges_recycled": judges.recycled,
            "judges_discarded": dict(judges.discarded),
        }


class AsBefore(DockerSandbox):
    """Isolated runs as before reused judges: with ``judges=false`` a fresh judge per run, and
    here the learner's container pre-imported in full, pytest included."""

    def learner_profile(self, environment: str, files: dict[str, str]) -> PreimportProfile:
        return PreimportProfile.FULL


class HttpQ5(EndToEnd):
    """HTTP end to end; an answer counts only as q5's full pass."""

    label = "ours: HTTP end to end, warm pool (isolated)"

    def __init__(self, q5: Q5, *, worker_concurrency: int, pool_size: int) -> None:
        super().__init__(
            worker_concurrency=worker_concurrency, pool_size=pool_size, environments=[ENVIRONMENT]
        )
        self.q5 = q5

    def sessions(self) -> set[int]:
        """The sessions of uvicorn, the Celery worker and redis-server (each its own)."""
        found = {self.api.pid} if self.api is not None else set()
        for service in (self.worker, self.redis):
            process = getattr(service, "process", None)
            if process is not None:
                found.add(os.getsid(process.pid))
        return found

    def _sample(
        self, workload: Workload, body: dict[str, Any], latency: float, client: tuple[float, float]
    ) -> Sample:
        sample = super()._sample(workload, body, latency, client)
        if sample.ok:
            problem = q5_problem(body.get("result") or {}, self.q5.tests)
            if problem is not None:
                sample.ok, sample.error = False, problem
        return sample


class IsolatedBench:
    """One run: the runner's two modes, then HTTP end to end, with a line per phase."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.args = args
        self.settings = settings
        self.stop = threading.Event()
        self.loop = LOOP_QUICK if args.quick else LOOP_FULL
        self.paced_count = args.paced or (4 if args.quick else 12)
        self.frames = FrameLog()
        self.q5 = load_q5(settings)
        self.attributed = AttributedCpu(settings.sandbox.deployment)

    def execute(self) -> IsolatedRun:
        started = time.monotonic()
        run = IsolatedRun(
            meta={
                "command": "python -m bench.isolated" + (" --quick" if self.args.quick else ""),
                "challenge": Q5_ID,
                "environment": ENVIRONMENT,
                "pool_size": self.args.pool_size,
                "worker_concurrency": self.args.worker_concurrency,
                "worker_pool_size": self.args.worker_pool_size,
                "paced_gap_s": PACED_GAP,
                "host": self.host_info(),
                "started_at": _now(),
            }
        )
        self.frames.install()
        self.attributed.start()
        run.meta["background_cpu_start"] = background_rate(3.0)
        runner = RunnerQ5(self.q5, self.settings, self.frames, self.args.pool_size)
        before = RunnerQ5(self.q5, self.settings, self.frames, self.args.pool_size, judges=False)
        self._guarded(run, "runner", runner, lambda: self._runner(run, runner, before))
        if not self.args.no_http:
            http = HttpQ5(
                self.q5,
                worker_concurrency=self.args.worker_concurrency,
                pool_size=self.args.worker_pool_size,
            )
            self._guarded(run, "HTTP end to end", http, lambda: self._http(run, http))
        run.meta["background_cpu_end"] = background_rate(3.0)
        self.attributed.close()
        run.meta["finished_at"] = _now()
        run.meta["duration_s"] = time.monotonic() - started
        return run

    def _guarded(self, run: IsolatedRun, name: str, variant: Variant, body: Any) -> None:
        try:
            variant.start()
            body()
        except (KeyboardInterrupt, Stopped):
            self.stop.set()
            raise
        except Exception as exc:
            run.failures[name] = f"{type(exc).__name__}: {exc}"
            print(f"{name} failed: {run.failures[name]}", flush=True)
        finally:
            variant.close()

    def _runner(self, run: IsolatedRun, runner: RunnerQ5, before: RunnerQ5) -> None:
        """The runner's modes; ``before`` grades isolated as before this change (a fresh judge
        and a fully pre-imported learner), its pool alive beside ``runner``'s throughout."""
        body = functools.partial(self._runner_modes, run, runner, before)
        self._guarded(run, "runner, as before", before, body)

    def _runner_modes(self, run: IsolatedRun, runner: RunnerQ5, before: RunnerQ5) -> None:
        q5 = self.q5
        run.paced["in_process"] = self._paced(runner, q5.in_process)
        run.paced["isolated"] = self._paced(runner, q5.isolated)
        run.paced["as_before"] = self._paced(before, q5.isolated)
        idle = self._idle()
        mark = self.attributed.reading()
        phase = runner.container_cost(CONTAINERS_MEASURED)
        used = self._since(mark)
        container = LoopPhase("container", phase, (idle + self._idle()) / 2, used)
        run.container = container
        print(
            f"  container start+remove: {container.net_cpu_seconds / CONTAINERS_MEASURED:.3f} "
            "host CPU-s each (net)",
            flush=True,
        )
        for mode, variant, workload in (
            ("in_process", runner, q5.in_process),
            ("isolated", runner, q5.isolated),
            ("as_before", before, q5.isolated),
            ("as_before", before, q5.isolated),
            ("isolated", runner, q5.isolated),
            ("in_process", runner, q5.in_process),
        ):
            run.loops.append(self._loop(mode, variant, workload))
        run.meta["judges"] = {"reused": runner.describe(), "as_before": before.describe()}

    def _http(self, run: IsolatedRun, http: HttpQ5) -> None:
        self.attributed.sessions = http.sessions()
        run.paced["e2e"] = self._paced(http, self.q5.isolated)
        run.loops.append(self._loop("e2e", http, self.q5.isolated))
        worker_log = http.worker_log()
        run.e2e_frames = frames_from_log(worker_log)
        run.meta["e2e_worker_log_events"] = event_counts(worker_log)

    def _since(self, mark: tuple[float, float]) -> tuple[float, float]:
        containers, processes = self.attributed.reading()
        return containers - mark[0], processes - mark[1]

    def _idle(self) -> float:
        return background_rate(1.0)

    def _paced(self, variant: Variant, workload: Workload) -> PhaseResult:
        """One at a time, each after the pool is full again and the same idle gap as bench.run."""
        plan = PhasePlan(1, self.paced_count, self.paced_count, 0.0, paced=True)
        variant.before_phase(workload, plan)
        samples: list[Sample] = []
        meter = CpuMeter()
        busy = 0.0
        for _ in range(plan.min_count):
            if self.stop.is_set():
                raise Stopped
            variant.between()
            time.sleep(PACED_GAP)
            t0 = time.monotonic()
            try:
                samples.append(variant.submit(workload))
            except Exception as exc:
                samples.append(Sample(time.monotonic() - t0, False, error=f"{exc!r}"[:300]))
            busy += time.monotonic() - t0
        variant.settle()
        cpu, window = meter.stop()
        phase = PhaseResult(1, samples, busy, cpu, window)
        self._echo(f"{_name(variant)} {workload.label} paced", phase)
        return phase

    def _loop(self, mode: str, variant: Variant, workload: Workload) -> LoopPhase:
        variant.before_phase(workload, self.loop)
        before = self._idle()
        mark = self.attributed.reading()
        meter = CpuMeter()
        samples, wall = closed_loop(
            lambda: variant.submit(workload), self.loop, stop=self.stop, on_sample=lambda _: None
        )
        variant.settle()
        cpu, window = meter.stop()
        used = self._since(mark)
        variant.after_phase()
        background = (before + self._idle()) / 2  # the pool is full and idle again here
        phase = PhaseResult(self.loop.concurrency, samples, wall, cpu, window)
        loop = LoopPhase(mode, phase, background, used)
        self._echo(f"{_name(variant)} {workload.label} c={self.loop.concurrency}", loop.phase, loop)
        return loop

    def _echo(self, name: str, phase: PhaseResult, loop: LoopPhase | None = None) -> None:
        summary = phase.summary()
        p50 = summary["p50_s"]
        line = (
            f"  {name:<34} n={len(phase.samples):<3} p50={'n/a' if p50 is None else f'{p50:.3f}s'}"
        )
        if loop is not None:
            count = max(len(phase.samples), 1)
            net, ours = loop.net_cpu_seconds / count, (loop.attributed_cpu_seconds or 0) / count
            line += f" thr={phase.throughput:.2f}/s cpu/sub={net:.3f}s net, {ours:.3f}s ours"
            line += f" (bg {loop.background:.2f})"
        if phase.errors:
            first = next(s.error for s in phase.samples if not s.ok)
            line += f" ERRORS {phase.errors}: {first}"
        print(line, flush=True)

    def host_info(self) -> dict[str, Any]:
        client = docker.from_env(timeout=60)
        repository = self.settings.images.repository
        try:
            info = client.info()
            image = client.images.get(f"{repository}/{ENVIRONMENT}:latest")
        finally:
            client.close()
        return {
            "code": code_state(),
            "cores": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "docker": f"{info.get('ServerVersion')} ({info.get('Driver')} storage, "
            f"cgroup v{info.get('CgroupVersion')}, {info.get('CgroupDriver')})",
            "image": f"{repository}/{ENVIRONMENT} = {str(image.id)[:19]}",
            "deployment": self.settings.sandbox.deployment,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.isolated", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--pool-size", type=int, default=4, help="runner pool per profile (>= 2)")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--worker-pool-size", type=int, default=2, help="HTTP: pool per process and profile (>= 2)"
    )
    parser.add_argument("--paced", type=int, default=None, help="paced submissions (12, quick 4)")
    parser.add_argument("--no-http", action="store_true", help="skip HTTP end to end")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    if args.pool_size < 2 or args.worker_pool_size < 2:
        parser.error("an isolated run takes two containers: pool sizes must be at least 2")
    return args


def _name(variant: Variant) -> str:
    before = isinstance(variant, RunnerQ5) and not variant.judges
    return f"{variant.key}{' as-before' if before else ''}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)
    settings = Settings()
    bench = IsolatedBench(args, settings)
    try:
        run = bench.execute()
    except (KeyboardInterrupt, Stopped):
        print("interrupted: everything started was cleaned up", file=sys.stderr)
        return 130
    paths = write_results(run, args.out)
    for target in run.targets():
        value = "n/a" if target["value"] is None else f"{target['value']:.3f}"
        met = {None: "not measured", True: "met", False: "NOT met"}[target["met"]]
        print(f"{target['target']:<66} {value:>7}  {met}")
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
