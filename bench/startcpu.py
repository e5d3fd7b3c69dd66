"""Where a strict-mode run's CPU goes on this host: ``python -m bench.startcpu``.

Starts ``--runs`` containers one after another for each pre-import profile (``bare`` with the
tiny script, ``full`` with the seed Q1), in three timed steps each: **start** (create, start,
the harness's interpreter and pre-imports, until it says ready), **run** (the submission, until
its report) and **remove**. Around each step it reads the CPU time of every host process
(``/proc/<pid>/stat``) and the host's total (``/proc/stat``), and the container's own cgroup
(``cpuacct.usage``: everything that ran inside it). Process CPU is grouped by name: dockerd,
containerd, containerd-shim, fuse-overlayfs (the storage driver: one process per container),
this benchmark's own process (the docker client), and the rest of the host (runc, which lives
for milliseconds and is not seen, the kernel, and whatever else runs on a shared host). A
process that ends between two readings loses what it spent since the last one (shims and
fuse-overlayfs at removal): that CPU shows only in the host's total, under "rest".

``--against REPOSITORY`` also measures the ``full`` profile with another build's images (for
example ``grader-env-before``, built from an earlier commit with ``GRADER_IMAGES__REPOSITORY``),
the two alternating run by run so that drift on a shared host falls on both alike, and reports
this build's CPU as a ratio of that one's. Its first column is what the run can be charged
with alone on a shared host: the container's cgroup plus the fuse-overlayfs process mounting
its layer and its shim (found by the container's upper dir and id), not the host-wide groups
that serve every tenant's containers.

Writes ``bench/results/startcpu.json`` and ``startcpu.md``. Report only; a shared host is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import docker

from grader.domain import Limits
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.settings import Settings

from .workloads import ENVIRONMENT, load_workloads

RESULTS = Path(__file__).resolve().parent / "results"
TICK = os.sysconf("SC_CLK_TCK")
GROUPS = ("dockerd", "containerd", "containerd-shim", "fuse-overlayfs")
OWN = "this container's fuse-overlayfs and shim"
"""The storage-driver and shim processes serving the measured container alone."""
ATTRIBUTED = "attributed (container + its fuse-overlayfs and shim)"
STEPS = ("start", "run", "remove")


def processes() -> dict[int, tuple[str, float]]:
    """Every host process's name and CPU seconds so far."""
    found = {}
    for folder in Path("/proc").iterdir():
        entry = folder.name
        if not entry.isdigit():
            continue
        try:
            text = (folder / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        found[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def host_busy() -> float:
    """CPU seconds the whole host has spent busy (every core, all but idle and iowait)."""
    first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0]
    values = [int(v) for v in first.split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def container_cpu(container_id: str) -> float | None:
    for path in (
        f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",
        f"/sys/fs/cgroup/cpu,cpuacct/docker/{container_id}/cpuacct.usage",
    ):
        try:
            return int(Path(path).read_text()) / 1e9
        except (OSError, ValueError):
            continue
    return None


def own_processes(client: docker.DockerClient, container_id: str) -> set[int]:
    """The fuse-overlayfs process mounting this container's layer and the container's shim."""
    try:
        upper = client.api.inspect_container(container_id)["GraphDriver"]["Data"].get("UpperDir")
    except (docker.errors.APIError, KeyError, TypeError):
        return set()
    found = set()
    for folder in Path("/proc").iterdir():
        if not folder.name.isdigit():
            continue
        try:
            args = (folder / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [arg.decode(errors="replace") for arg in args]
        line = " ".join(words)
        if (upper and words[0].endswith("fuse-overlayfs") and f"upperdir={upper}" in line) or (
            "containerd-shim" in words[0] and container_id in words
        ):
            found.add(int(folder.name))
    return found


def grouped(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds spent between two readings, per process group."""
    me = os.getpid()
    spent: dict[str, float] = defaultdict(float)
    for pid, (name, cpu) in after.items():
        delta = cpu - before[pid][1] if pid in before else cpu
        group = "bench (docker client)" if pid == me else name if name in GROUPS else None
        if group is not None:
            spent[group] += max(delta, 0.0)
    return spent


def measure(
    sandbox: DockerSandbox, profile: PreimportProfile, runs: int
) -> dict[str, dict[str, float]]:
    workload = {w.key: w for w in load_workloads()}[
        "q1" if profile is PreimportProfile.FULL else "script"
    ]
    limits = Limits()
    client = docker.from_env(timeout=60)
    totals: dict[str, dict[str, float]] = {step: defaultdict(float) for step in STEPS}
    for _ in range(runs):
        marks = [(processes(), host_busy(), time.monotonic())]
        ready = sandbox.prestart(ENVIRONMENT, limits, profile=profile)
        inside_ready = container_cpu(ready.container_id) or 0.0
        marks.append((processes(), host_busy(), time.monotonic()))
        own = own_processes(client, ready.container_id)
        sandbox.execute(ready, workload.request, limits, pool_hit=False)
        inside_done = container_cpu(ready.container_id) or inside_ready
        marks.append((processes(), host_busy(), time.monotonic()))
        sandbox.destroy(ready)
        marks.append((processes(), host_busy(), time.monotonic()))
        inside = {"start": inside_ready, "run": inside_done - inside_ready, "remove": 0.0}
        for index, step in enumerate(STEPS):
            (p0, h0, t0), (p1, h1, t1) = marks[index], marks[index + 1]
            spent = grouped(p0, p1)
            spent["container (harness, imports, snippet)"] = inside[step]
            spent[OWN] = sum(
                max(p1[pid][1] - (p0[pid][1] if pid in p0 else 0.0), 0.0)
                for pid in own
                if pid in p1
            )
            spent[ATTRIBUTED] = inside[step] + spent[OWN]
            spent["host total"] = h1 - h0
            spent["wall"] = t1 - t0
            for key, value in spent.items():
                totals[step][key] += value
        time.sleep(0.3)  # let the engine settle between runs
    client.close()
    return {step: {k: v / runs for k, v in values.items()} for step, values in totals.items()}


def compare(
    ours: DockerSandbox, before: DockerSandbox, runs: int
) -> dict[str, dict[str, dict[str, float]]]:
    """The ``full`` profile with both builds' images, one run of each in turn (A-B, B-A, ...)."""
    totals: dict[str, list[dict[str, dict[str, float]]]] = {"ours": [], "before": []}
    for index in range(runs):
        order = [("ours", ours), ("before", before)]
        for name, sandbox in order if index % 2 == 0 else order[::-1]:
            totals[name].append(measure(sandbox, PreimportProfile.FULL, 1))
    return {name: _mean(samples) for name, samples in totals.items()}


def _mean(samples: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    keys = {key for sample in samples for values in sample.values() for key in values}
    return {
        step: {key: sum(s[step].get(key, 0.0) for s in samples) / len(samples) for key in keys}
        for step in STEPS
    }


def comparison(results: dict[str, dict[str, dict[str, float]]], against: str) -> str:
    """The A/B section: this build's ``full`` start-run-remove CPU against the other build's."""
    named = [ATTRIBUTED, "container (harness, imports, snippet)", OWN, "host total", "wall"]
    lines = [
        f"## this build against `{against}` (profile `full`, runs alternating)",
        "",
        "| build | " + " | ".join(named) + " |",
        "|---|" + "---|" * len(named),
    ]
    sums = {
        name: {key: sum(steps[s].get(key, 0.0) for s in STEPS) for key in named}
        for name, steps in results.items()
    }
    for name, values in sums.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[k]:.3f}" for k in named) + " |")
    ratios = " | ".join(
        f"{sums['ours'][k] / sums['before'][k]:.3f}" if sums["before"][k] else "—" for k in named
    )
    lines += [f"| ours ÷ before | {ratios} |", ""]
    return "\n".join(lines)


def idle_rate(seconds: float = 3.0) -> float:
    """CPU-s/s the host spends while this benchmark does nothing (others' load, daemons)."""
    before, started = host_busy(), time.monotonic()
    time.sleep(seconds)
    return (host_busy() - before) / (time.monotonic() - started)


def report(results: dict[str, dict[str, dict[str, float]]], runs: int, idle: float) -> str:
    lines = [
        "# Where a strict-mode run's CPU goes",
        "",
        f"`python -m bench.startcpu --runs {runs}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} cores, environment `{ENVIRONMENT}`. CPU seconds per run, averaged. "
        "'rest' is the host's total minus the named groups: runc (too short-lived to be seen), "
        "the kernel, processes that ended between readings, and other load on a shared host. "
        f"While this benchmark idled the host spent {idle:.2f} CPU-s/s; 'rest net' subtracts "
        "that rate over the step's wall time (an estimate: others' load varies).",
        "",
    ]
    named = ["container (harness, imports, snippet)", *GROUPS, "bench (docker client)"]
    for profile, steps in results.items():
        lines += [
            f"## profile `{profile}`",
            "",
            "| step | wall s | host total | " + " | ".join(named) + " | rest | rest net |",
        ]
        lines.append("|---|" + "---|" * (len(named) + 4))
        for step in (*STEPS, "all"):
            values = (
                steps[step]
                if step != "all"
                else {
                    k: sum(steps[s].get(k, 0.0) for s in STEPS)
                    for k in {*named, "host total", "wall"}
                }
            )
            rest = values.get("host total", 0.0) - sum(values.get(k, 0.0) for k in named)
            cells = " | ".join(f"{values.get(k, 0.0):.3f}" for k in named)
            wall, total = values.get("wall", 0.0), values.get("host total", 0.0)
            net = rest - idle * wall
            lines.append(
                f"| {step} | {wall:.3f} | {total:.3f} | {cells} | {rest:.3f} | {net:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startcpu", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--against", metavar="REPOSITORY", help="another build's image repository")
    args = parser.parse_args(argv)
    settings = Settings()
    sandbox = DockerSandbox.from_env(repository=settings.images.repository)
    before = DockerSandbox.from_env(repository=args.against) if args.against else None
    idle = idle_rate()
    try:
        results = {
            profile.value: measure(sandbox, profile, args.runs)
            for profile in (PreimportProfile.BARE, PreimportProfile.FULL)
        }
        against = compare(sandbox, before, args.runs) if before is not None else None
    finally:
        sandbox.close()
        if before is not None:
            before.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startcpu.json").write_text(
        json.dumps(
            {
                "idle_cpu_per_second": idle,
                "steps": results,
                "against": args.against,
                "comparison": against,
            },
            indent=2,
        )
        + "\n"
    )
    text = report(results, args.runs, idle)
    if against is not None:
        text += "\n" + comparison(against, args.against)
    (args.out / "startcpu.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
