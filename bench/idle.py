"""What the idle stack costs: ``python -m bench.idle``.

Starts the stack the HTTP benchmark uses (a redis-server, the API under uvicorn, a Celery
worker with ``--concurrency 2`` and full warm pools), waits until the pools are full and
idle, then measures for ``--seconds`` the CPU of every process of the stack (by process tree)
and of the idle sandbox containers (their cgroups). It also measures what one run of each
health check costs: the worker's old one (``celery inspect ping``), its new one (a ``find``
on the heartbeat file) and the API's (a Python ``urllib`` request), and reports what each
costs per second at its compose interval.

Writes ``bench/results/idle.md`` and ``idle.json``. Report only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from grader.testing import ROOT, worker_env

from .e2e import EndToEnd
from .startcpu import TICK, container_cpu

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
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stack = EndToEnd(worker_concurrency=2, pool_size=2)
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
        containers = _containers(stack)
        before = tree_cpu(roots)
        inside = {c: container_cpu(c) or 0.0 for c in containers}
        started = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - started
        after = tree_cpu(roots)
        spent = {name: (after[name] - before[name]) / elapsed for name in roots}
        spent[f"{len(containers)} idle sandbox containers"] = (
            sum((container_cpu(c) or 0.0) - inside[c] for c in containers) / elapsed
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
    (args.out / "idle.json").write_text(
        json.dumps({"seconds": args.seconds, "stack": spent, "checks": checks}, indent=2) + "\n"
    )
    text = _report(spent, checks, args.seconds)
    (args.out / "idle.md").write_text(text + "\n")
    print(text)


def _containers(stack: EndToEnd) -> list[str]:
    import docker  # noqa: PLC0415  only here

    from grader.sandbox.containers import LABEL_OWNER  # noqa: PLC0415

    client = docker.from_env()
    try:
        return [
            str(c["Id"])
            for owner in stack.owners
            for c in client.api.containers(filters={"label": f"{LABEL_OWNER}={owner}"})
        ]
    finally:
        client.close()


def _report(spent: dict[str, float], checks: dict[str, tuple[float, int]], seconds: float) -> str:
    total = sum(spent.values())
    lines = [
        "# The idle stack's CPU",
        "",
        f"`python -m bench.idle --seconds {seconds:.0f}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores: "
        "redis-server, the API under uvicorn, a Celery worker (2 processes, pools full), idle. "
        "Health checks are measured apart (compose runs them; this stack has no compose).",
        "",
        "| part | % of one core |",
        "|---|---|",
        *(f"| {name} | {rate * 100:.2f} |" for name, rate in spent.items()),
        f"| **stack without health checks** | **{total * 100:.2f}** |",
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
