"""What the idle stack costs: ``python -m bench.idle``.

Starts the stack the HTTP benchmark uses (a redis-server, the API under uvicorn, a Celery
worker with ``--concurrency 2`` and full warm pools), waits until the pools are full and
idle, then measures for ``--seconds`` the CPU of every process of the stack (by process tree),
of the idle sandbox containers (their cgroups), of their shims and fuse-overlayfs processes,
and of the engine's daemons (dockerd, containerd: shared with the rest of the host). It also
measures what one run of each health check costs: the worker's old one (``celery inspect
ping``), its new one (a ``find`` on the heartbeat file), the API's new one (bash alone, over
``/dev/tcp``) and its old one (a Python ``urllib`` request), and reports what each costs per
second at its compose interval.

Writes ``bench/results/idle.md`` and ``idle.json`` (``idle-pool<N>.*`` for a ``--pool-size``
other than the default). Report only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from grader.domain import Limits
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.sandbox.containers import LABEL_PROFILE
from grader.settings import Settings
from grader.testing import ROOT, worker_env

from .e2e import EndToEnd
from .startcpu import TICK, container_cpu, host_busy, idle_rate, own_processes, processes
from .workloads import ENVIRONMENT

ENGINE = ("dockerd", "containerd")
"""The engine's daemons: shared with whatever else the host runs, reported on their own line."""
FUSE = "fuse-overlayfs"
"""The storage driver's per-container process on hosts without native overlay (this one)."""

RESULTS = Path(__file__).resolve().parent / "results"
WORKER_CHECK_OLD = [
    sys.executable,
    "-m",
    "celery",
    "-A",
    "worker.celery_app",
    "inspect",
    "ping",
    "--timeout",
    "5",
]
WORKER_CHECK_NEW = ["sh", "-c", '[ -n "$(find /tmp/grader-worker-heartbeat -mmin -0.5)" ]']
API_CHECK_NEW = (
    "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 "
    "&& read -r status <&3 && [[ $status == *' 200 '* ]]"
)
"""The API's compose health check (bash alone, no Python), on ``port``."""


def tree_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree (its root and every descendant)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for folder in Path("/proc").iterdir():
        if not folder.name.isdigit():
            continue
        try:
            text = (folder / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parent[int(folder.name)] = int(fields[1])
        cpu[int(folder.name)] = (int(fields[11]) + int(fields[12])) / TICK
    totals: dict[str, float] = defaultdict(float)
    for pid, seconds in cpu.items():
        walk = pid
        while walk > 1:
            for name, root in roots.items():
                if walk == root:
                    totals[name] += seconds
                    break
            else:
                walk = parent.get(walk, 0)
                continue
            break
    return totals


def check_cost(command: list[str], env: dict[str, str], runs: int = 3) -> float:
    """CPU seconds one run of a health check command costs here (children's usage).

    A check that fails here is no measure of a working check: it raises.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"health check failed: {command}: {done.stderr[-300:]!r}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return spent / runs


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=settings.sandbox.pool_size,
        help="ready containers per environment and profile (default: the setting's default)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stack = EndToEnd(worker_concurrency=2, pool_size=args.pool_size)
    engine_alone = _engine_rate(20.0)
    try:
        stack.start()
        time.sleep(5)  # the last pool containers finish their imports
        assert stack.redis is not None and stack.redis.process is not None  # noqa: S101
        assert stack.worker is not None and stack.worker.process is not None  # noqa: S101
        assert stack.api is not None  # noqa: S101
        roots = {
            "redis-server": stack.redis.process.pid,
            "API (uvicorn)": stack.api.pid,
            "worker (Celery, 2 processes)": stack.worker.process.pid,
        }
        profiles, serving = _idle_containers(stack)
        containers = list(profiles)
        before = tree_cpu(roots)
        inside = {c: container_cpu(c) or 0.0 for c in containers}
        host_before = processes()
        started = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - started
        after = tree_cpu(roots)
        host_after = processes()
        spent = {name: (after[name] - before[name]) / elapsed for name in roots}
        spent[f"{len(containers)} idle sandbox containers"] = (
            sum((container_cpu(c) or 0.0) - inside[c] for c in containers) / elapsed
        )
        spent["their shims (containerd-shim)"] = (
            _spent(host_before, host_after, lambda pid, name: pid in serving and name != FUSE)
            / elapsed
        )
        spent["their storage-driver processes (fuse-overlayfs)"] = (
            _spent(host_before, host_after, lambda pid, name: pid in serving and name == FUSE)
            / elapsed
        )
        engine = _spent(host_before, host_after, lambda _pid, name: name in ENGINE) / elapsed
        spent["the engine (dockerd, containerd), above its rate before the stack"] = (
            engine - engine_alone
        )
        ttl = settings.sandbox.pool_ttl_seconds
        replaced = _replacement_cpu(Counter(profiles.values()), settings.images.repository)
        spent[f"replacing each ready container when it expires ({ttl:.0f} s)"] = (
            sum(count * cost for count, cost in replaced.values()) / ttl
        )
        env = worker_env(stack.redis.url)
        checks = {
            "worker, old: celery inspect ping (every 10 s)": (
                check_cost(WORKER_CHECK_OLD, env),
                10,
            ),
            "worker, new: find on the heartbeat file (every 10 s)": (
                check_cost(WORKER_CHECK_NEW, env),
                10,
            ),
            "API, new: bash /dev/tcp GET /healthz (every 10 s)": (
                check_cost(
                    ["bash", "-c", API_CHECK_NEW.format(port=stack.base_url.rsplit(":", 1)[1])], env
                ),
                10,
            ),
            "API, old: python3 urllib /healthz (every 3 s)": (
                check_cost(
                    [
                        sys.executable,
                        "-c",
                        "import urllib.request; urllib.request.urlopen("
                        f"'{stack.base_url}/healthz')",
                    ],
                    env,
                ),
                3,
            ),
        }
    finally:
        stack.close()
    args.out.mkdir(parents=True, exist_ok=True)
    # The default pool size's figures are idle.md; another size's are idle-pool<N>.md.
    default = args.pool_size == settings.sandbox.pool_size
    stem = "idle" if default else f"idle-pool{args.pool_size}"
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {
                "seconds": args.seconds,
                "pool_size": args.pool_size,
                "stack": spent,
                "checks": checks,
                "engine_alone": engine_alone,
                "engine_with_stack": engine,
                "replacement_cpu": {k: {"count": n, "cpu_s": c} for k, (n, c) in replaced.items()},
            },
            indent=2,
        )
        + "\n"
    )
    text = _report(spent, checks, args, (engine_alone, engine), replaced)
    (args.out / f"{stem}.md").write_text(text + "\n")
    print(text)


def _idle_containers(stack: EndToEnd) -> tuple[dict[str, str], set[int]]:
    """The stack's sandbox containers with their pre-import profiles, and the pids of their
    shims and fuse-overlayfs processes."""
    import docker  # noqa: PLC0415  only here

    from grader.sandbox.containers import LABEL_OWNER  # noqa: PLC0415

    client = docker.from_env()
    try:
        profiles = {
            str(c["Id"]): (c["Labels"] or {}).get(LABEL_PROFILE, "?")
            for owner in stack.owners
            for c in client.api.containers(filters={"label": f"{LABEL_OWNER}={owner}"})
        }
        serving = {pid for c in profiles for pid in own_processes(client, c)}
    finally:
        client.close()
    return profiles, serving


def _engine_rate(seconds: float) -> float:
    """The engine daemons' share of one core before the stack starts."""
    before = processes()
    time.sleep(seconds)
    return _spent(before, processes(), lambda _pid, name: name in ENGINE) / seconds


def _replacement_cpu(
    counts: dict[str, int], repository: str, runs: int = 3
) -> dict[str, tuple[int, float]]:
    """Per profile: how many idle containers, and the host CPU-s of starting one (ready, its
    imports done) and removing it, net of the host's idle rate just measured.

    The pool replaces each container when it expires: that much CPU, once per ttl.
    """
    sandbox = DockerSandbox.from_env(repository=repository)
    measured: dict[str, tuple[int, float]] = {}
    try:
        idle = idle_rate(3.0)
        for name, count in counts.items():
            profile = PreimportProfile(name)
            total = 0.0
            for _ in range(runs):
                busy, started = host_busy(), time.monotonic()
                sandbox.destroy(sandbox.prestart(ENVIRONMENT, Limits(), profile=profile))
                total += host_busy() - busy - idle * (time.monotonic() - started)
                time.sleep(0.3)
            measured[name] = (count, max(total / runs, 0.0))
    finally:
        sandbox.close()
    return measured


def _spent(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    chosen: Callable[[int, str], bool],
) -> float:
    """CPU seconds the ``chosen`` processes spent between two readings of the host's."""
    return sum(
        max(cpu - before[pid][1], 0.0)
        for pid, (name, cpu) in after.items()
        if pid in before and chosen(pid, name)
    )


def _report(
    spent: dict[str, float],
    checks: dict[str, tuple[float, int]],
    args: argparse.Namespace,
    engine: tuple[float, float],
    replaced: dict[str, tuple[int, float]],
) -> str:
    total = sum(spent.values())
    lines = [
        "# The idle stack's CPU",
        "",
        f"`python -m bench.idle --seconds {args.seconds:.0f} --pool-size {args.pool_size}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores: "
        "redis-server, the API under uvicorn, a Celery worker (2 processes, pools full with "
        f"`GRADER_SANDBOX__POOL_SIZE={args.pool_size}`, the default settings otherwise), idle. "
        "Health checks are measured apart (compose runs them; this stack has no compose).",
        "",
        "| part | % of one core |",
        "|---|---|",
        *(f"| {name} | {rate * 100:.2f} |" for name, rate in spent.items()),
        f"| **stack without health checks** | **{total * 100:.2f}** |",
        "",
        f"The engine's daemons used {engine[0] * 100:.2f} % of one core in the 20 s before the "
        f"stack started and {engine[1] * 100:.2f} % while it idled: only the difference is "
        "counted above (it can come out negative on a noisy host). Each container's shim "
        "wakes up on its own: the cost of an idle container is mostly its shim's, its "
        "fuse-overlayfs process's (on hosts whose storage driver needs one) and its "
        "replacement's, so the stack's idle CPU grows with "
        "the pool size.",
        "",
        "| profile | idle containers | host CPU-s to start one (ready) and remove it |",
        "|---|---|---|",
        *(f"| {name} | {count} | {cost:.3f} |" for name, (count, cost) in replaced.items()),
        "",
        "| health check | CPU-s per run | % of one core at its interval |",
        "|---|---|---|",
        *(
            f"| {name} | {cost:.3f} | {cost / interval * 100:.2f} |"
            for name, (cost, interval) in checks.items()
        ),
        "",
    ]
    new = [(c, i) for name, (c, i) in checks.items() if "old" not in name]
    with_checks = total + sum(c / i for c, i in new)
    lines.append(f"Idle stack with the new checks: **{with_checks * 100:.2f} % of one core**.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
