"""The q5 row of issue 12: what one run of ``bench.isolated`` measured, its checks and report.

Pure: the verdict check of each sample, the frame counts read from a worker's log, the
background-subtracted CPU per submission, the targets, and ``isolated.json``/``isolated.md``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import PACED_GAP, PhaseResult, Sample, percentile

TARGET_P50 = 0.25
TARGET_CPU_RATIO = 1.5
MODES = ("in_process", "isolated", "as_before", "e2e")
LABELS = {
    "in_process": "in-process, runner warm (`isolated=False`, one container)",
    "isolated": "isolated, runner warm (a fresh `serve` learner container, the judge reused)",
    "as_before": "isolated as before: a fresh judge and a fresh `full` learner per run",
    "e2e": "isolated, HTTP end to end warm (API + Redis + Celery; judges reused)",
}


@dataclass
class LoopPhase:
    """One closed-loop phase and the host's idle CPU rate measured just before it."""

    mode: str
    phase: PhaseResult
    background: float
    """Host CPU-s per second while the benchmark idled (other tenants, daemons)."""
    attributed: tuple[float, float] | None = None
    """CPU-s of our sandbox containers and of our own processes over the phase (probes.py)."""

    @property
    def net_cpu_seconds(self) -> float:
        return self.phase.cpu_seconds - self.background * self.phase.cpu_window_seconds

    @property
    def attributed_cpu_seconds(self) -> float | None:
        return sum(self.attributed) if self.attributed is not None else None


def net_cpu_per_submission(loops: Sequence[LoopPhase]) -> float | None:
    """Host CPU-s per submission over ``loops``, the background's share of each window removed."""
    count = sum(len(loop.phase.samples) for loop in loops)
    return sum(loop.net_cpu_seconds for loop in loops) / count if count else None


def attributed_per_submission(loops: Sequence[LoopPhase]) -> float | None:
    """Our containers' and processes' CPU-s per submission over ``loops`` (all must have it)."""
    count = sum(len(loop.phase.samples) for loop in loops)
    values = [loop.attributed_cpu_seconds for loop in loops]
    if not count or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / count


def throughput(loops: Sequence[LoopPhase]) -> float | None:
    """Successful submissions per second of closed-loop wall time, over ``loops``."""
    wall = sum(loop.phase.wall_seconds for loop in loops)
    done = sum(len(loop.phase.ok_latencies) for loop in loops)
    return done / wall if wall > 0 and done else None


def ratio(mine: float | None, reference: float | None) -> float | None:
    return mine / reference if mine is not None and reference else None


def median_part(samples: Sequence[Sample], name: str) -> float | None:
    values = [s.parts[name] for s in samples if s.ok and name in s.parts]
    return statistics.median(values) if values else None


@dataclass
class IsolatedRun:
    """Everything one run measured, plus how it was set up."""

    meta: dict[str, Any]
    paced: dict[str, PhaseResult] = field(default_factory=dict)
    loops: list[LoopPhase] = field(default_factory=list)
    container: LoopPhase | None = None
    """Start (pre-import included) and removal of single containers, one after the other."""
    failures: dict[str, str] = field(default_factory=dict)
    e2e_frames: list[tuple[int, int]] = field(default_factory=list)

    def loops_of(self, mode: str) -> list[LoopPhase]:
        return [loop for loop in self.loops if loop.mode == mode]

    def latency(self, mode: str, q: float) -> float | None:
        phase = self.paced.get(mode)
        values = phase.ok_latencies if phase is not None else []
        return percentile(values, q) if values else None

    def cpu(self, mode: str) -> float | None:
        return net_cpu_per_submission(self.loops_of(mode))

    def ours_cpu(self, mode: str) -> float | None:
        return attributed_per_submission(self.loops_of(mode))

    def raw_cpu(self, mode: str) -> float | None:
        loops = self.loops_of(mode)
        count = sum(len(loop.phase.samples) for loop in loops)
        return sum(loop.phase.cpu_seconds for loop in loops) / count if count else None

    def throughput(self, mode: str) -> float | None:
        return throughput(self.loops_of(mode))

    def samples(self, mode: str) -> list[Sample]:
        paced = self.paced.get(mode)
        found = list(paced.samples) if paced is not None else []
        return found + [s for loop in self.loops_of(mode) for s in loop.phase.samples]

    def errors(self, mode: str) -> int:
        return sum(1 for s in self.samples(mode) if not s.ok)

    def container_cpu(self, *, ours: bool = False) -> float | None:
        """One container started and removed: host CPU-s net, or ours (the container's)."""
        if self.container is None or not self.container.phase.samples:
            return None
        if ours:
            return attributed_per_submission([self.container])
        return self.container.net_cpu_seconds / len(self.container.phase.samples)

    def frames(self, mode: str) -> tuple[float, float] | None:
        """Median frames to the learner and to the judge per run."""
        if mode == "e2e":
            pairs = self.e2e_frames
        else:
            pairs = [
                (int(s.parts["frames_to_learner"]), int(s.parts["frames_to_judge"]))
                for s in self.samples(mode)
                if "frames_to_learner" in s.parts
            ]
        if not pairs:
            return None
        return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)

    def targets(self) -> list[dict[str, Any]]:
        """The issue's two targets, and the runner's p50 for reference."""
        rows = [
            ("p50 warm end to end (HTTP, paced) <= 0.25 s", self.latency("e2e", 50), TARGET_P50),
            ("p50 warm, runner only (paced) <= 0.25 s", self.latency("isolated", 50), TARGET_P50),
            (
                "CPU per submission, isolated / in-process (runner, c=2, host net) <= 1.5x",
                ratio(self.cpu("isolated"), self.cpu("in_process")),
                TARGET_CPU_RATIO,
            ),
            (
                "CPU per submission, isolated / in-process (runner, c=2, ours) <= 1.5x",
                ratio(self.ours_cpu("isolated"), self.ours_cpu("in_process")),
                TARGET_CPU_RATIO,
            ),
        ]
        return [
            {
                "target": name,
                "value": value,
                "threshold": threshold,
                "met": None if value is None else value <= threshold,
                "over_by": None if value is None else value / threshold,
            }
            for name, value, threshold in rows
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "failures": self.failures,
            "summary": {
                mode: {
                    "p50_s": self.latency(mode, 50),
                    "p90_s": self.latency(mode, 90),
                    "throughput_c2_per_s": self.throughput(mode),
                    "host_cpu_s_per_submission_net": self.cpu(mode),
                    "host_cpu_s_per_submission_raw": self.raw_cpu(mode),
                    "ours_cpu_s_per_submission": self.ours_cpu(mode),
                    "frames_to_learner_judge_median": self.frames(mode),
                    "errors": self.errors(mode),
                }
                for mode in MODES
            },
            "container_start_remove_cpu_s": self.container_cpu(),
            "container_start_remove_ours_cpu_s": self.container_cpu(ours=True),
            "targets": self.targets(),
            "paced": {mode: phase.summary() for mode, phase in self.paced.items()},
            "loops": [
                {
                    "mode": loop.mode,
                    "background_cpu_s_per_s": loop.background,
                    "ours_cpu_s_containers_processes": loop.attributed,
                    **loop.phase.summary(),
                }
                for loop in self.loops
            ],
            "container_phase": None
            if self.container is None
            else {
                "background_cpu_s_per_s": self.container.background,
                "ours_cpu_s_containers_processes": self.container.attributed,
            }
            | self.container.phase.summary(),
            "e2e_frames": self.e2e_frames,
        }


def write_all(run: IsolatedRun, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "isolated.json", "md": folder / "isolated.md"}
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run.to_json(), indent=1))
    tmp.replace(paths["json"])
    paths["md"].write_text("\n".join(markdown(run)) + "\n")
    return paths


def _f(value: float | None, digits: int = 3, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def markdown(run: IsolatedRun) -> list[str]:
    meta = run.meta
    lines = [
        "# Benchmark (issue 12, item 7): q5's hidden tests graded isolated",
        "",
        f"Generated by `{meta['command']}` on {meta['finished_at']} ({meta['duration_s']:.0f} s). "
        f"Challenge `{meta['challenge']}`, its reference solution as the learner's code, "
        f"environment `{meta['environment']}`. One run, one shared machine: only the ratios "
        "within this run mean anything.",
        "",
    ]
    for name, error in run.failures.items():
        lines += [f"> **Warning: {name} failed:** {error}", ""]
    lines += ["## Targets", "", "| target | value | result |", "|---|---|---|"]
    for target in run.targets():
        value, met = target["value"], target["met"]
        unit = "x" if "CPU" in target["target"] else " s"
        verdict = "not measured" if met is None else "met" if met else "**not met**"
        if met is False:
            verdict += f" ({target['over_by']:.2f}x the target)"
        lines.append(f"| {target['target']} | {_f(value, 3, unit)} | {verdict} |")
    lines += [
        "",
        "## Results",
        "",
        "| mode | p50 s paced | p90 s paced | n paced | pool hits paced | thr c=2 /s "
        "| host CPU-s / sub (net) | (raw) | ours CPU-s / sub | frames to learner / judge "
        "| judge's run p50 s | errors |",
        "|---|" + "---|" * 11,
    ]
    for mode in MODES:
        paced = run.paced.get(mode)
        hits = paced.pool_hit_ratio if paced is not None else None
        frames = run.frames(mode)
        lines.append(
            f"| {LABELS[mode]} | {_f(run.latency(mode, 50))} | {_f(run.latency(mode, 90))} "
            f"| {len(paced.samples) if paced else 0} | {'n/a' if hits is None else f'{hits:.0%}'} "
            f"| {_f(run.throughput(mode), 2)} | {_f(run.cpu(mode))} | {_f(run.raw_cpu(mode))} "
            f"| {_f(run.ours_cpu(mode))} "
            f"| {'—' if frames is None else f'{frames[0]:g} / {frames[1]:g}'} "
            f"| {_f(median_part(paced.samples if paced else [], 'harness_run'))} "
            f"| {run.errors(mode)} |"
        )
    lines += ["", *_where(run), "", *_method(run), "", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in meta["host"].items()]
    lines.append(
        f"- host CPU busy while idle: {meta['background_cpu_start']:.3f} CPU-s/s before, "
        f"{meta['background_cpu_end']:.3f} after; before each closed loop: "
        + ", ".join(f"{loop.background:.3f}" for loop in run.loops)
    )
    return lines


def _where(run: IsolatedRun) -> list[str]:
    """Where the isolated run's extra time and CPU go, from this run's own numbers."""
    iso, inproc = run.paced.get("isolated"), run.paced.get("in_process")
    lines = ["## Where the time and the CPU go", ""]
    if iso is None or inproc is None:
        return [*lines, "n/a (a runner phase is missing)"]
    judge = median_part(iso.samples, "harness_run")
    alone = median_part(inproc.samples, "harness_run")
    frames = run.frames("isolated")
    latency, latency_in = run.latency("isolated", 50), run.latency("in_process", 50)
    if None not in (judge, alone, latency, latency_in) and frames:
        assert judge is not None and alone is not None  # noqa: S101
        assert latency is not None and latency_in is not None  # noqa: S101
        per_trip = (judge - alone) / frames[0] if frames[0] else None
        lines += [
            f"- Latency: isolated p50 {latency:.3f} s against in-process {latency_in:.3f} s "
            f"(+{latency - latency_in:.3f} s). Inside the containers the judge's run takes "
            f"{judge:.3f} s against the in-process harness's {alone:.3f} s: "
            f"+{judge - alone:.3f} s for {frames[0]:g} requests to the learner and "
            f"{frames[1]:g} answers, about {_f(per_trip, 4)} s per round trip (judge child -> "
            "judge supervisor -> attach stream -> worker relay -> learner supervisor -> learner "
            "child and back: four pipe hops and two engine attach streams each way). Outside "
            f"the containers (take two containers, send, relay, parse): {latency - judge:.3f} s "
            f"isolated, {latency_in - alone:.3f} s in-process.",
        ]
    ours = run.container_cpu(ours=True) is not None and run.ours_cpu("in_process") is not None
    kind = "our (containers' cgroups + our processes)" if ours else "host net"
    per_container = run.container_cpu(ours=ours)
    cpu_iso = run.ours_cpu("isolated") if ours else run.cpu("isolated")
    cpu_fresh = run.ours_cpu("as_before") if ours else run.cpu("as_before")
    cpu_in = run.ours_cpu("in_process") if ours else run.cpu("in_process")
    if per_container is not None and cpu_iso is not None and cpu_fresh is not None and cpu_in:
        floor = (2 * per_container + max(cpu_in - per_container, 0.0)) / cpu_in
        lines += [
            f"- CPU ({kind} CPU-s): starting a container pre-imported in full and removing it "
            f"costs {per_container:.3f} (measured alone, one after the other). An in-process "
            "run takes one such container. An isolated run took two (a fresh judge and a fresh "
            "learner, both in full: the *as before* row), so its ratio could not drop below "
            f"about {floor:.2f}x; it now takes one fresh learner container pre-imported without "
            "pytest (`serve`) and a judge restored and verified after its previous run of the "
            f"same suite. Measured per submission: in-process {cpu_in:.3f}, isolated "
            f"{cpu_iso:.3f} ({cpu_iso / cpu_in:.2f}x), as before {cpu_fresh:.3f} "
            f"({cpu_fresh / cpu_in:.2f}x): {cpu_fresh - cpu_iso:.3f} saved per submission.",
        ]
    return lines


def _method(run: IsolatedRun) -> list[str]:
    meta = run.meta
    return [
        "## Method",
        "",
        f"- **Runner warm**: one `DockerSandbox` with `start_pool(size={meta['pool_size']})`: "
        f"{meta['pool_size']} ready containers per pre-import profile (`full`, `bare`, "
        "`serve` and `judge`), so both containers of an isolated run come warm; a used judge "
        "of q5's suite, restored and verified, goes first. The *as before* row is a second "
        "`DockerSandbox` with `judges=false` whose learner containers are pre-imported in "
        "full (`bench.isolated.AsBefore`), its pool alive beside the first for the whole "
        "comparison. The request is `request_for(q5, reference, expectation, "
        "isolated=True|False)`, as the worker builds it; latency is `DockerSandbox.run`.",
        f"- **HTTP end to end**: `POST /v1/submissions?wait=30` through uvicorn, a real "
        f"redis-server and a real Celery worker (`--concurrency "
        f"{meta['worker_concurrency']}`, a pool of {meta['worker_pool_size']} per process and "
        "profile, only this environment's queue and pool); the worker grades isolated.",
        f"- **Paced**: one submission at a time, each after the pool is full again and a "
        f"{PACED_GAP:g} s idle gap (as `bench.run`); p50/p90 from these.",
        "- **Closed loop at c=2**: two threads each submit again as soon as they have the "
        "answer; the runner's three modes alternate in A-B-C-C-B-A order to cancel drift. "
        "Throughput = successful submissions / wall time. Host CPU = busy time of the whole "
        "host from `/proc/stat` from the phase's start until the pool is full again (the refill "
        "of the containers used is counted), minus the host's idle rate (the mean of 1 s "
        "measured just before and 1 s just after the phase) times the window (*net*); *raw* "
        "keeps it. The price of one container is measured the same way. *Ours* = CPU of "
        "this deployment's sandbox containers (their cgroups) plus our own processes, "
        "read before and after the phase: the ratio that other tenants' load does not blur.",
        "- **Checked**: every sample's observation is graded with `grader.domain.compare` (over "
        "HTTP: the stored verdict); it counts only when the verdict is `passed` with exactly "
        "q5's five hidden tests, each `passed`. Otherwise it is an error.",
        "- **Frames**: from the `sandbox_isolated_run` log line of each run "
        "(`frames_to_learner`, `frames_to_judge`), captured in-process for the runner and read "
        "from the Celery worker's JSON log for HTTP.",
    ]
