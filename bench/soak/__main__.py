"""``python -m bench.soak``: the fault-injection soak (``make soak``); see ``docs/soak.md``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.adapters.redis_keys import STATS, SUBMISSION
from grader.settings import Settings
from grader.testing import ROOT

from .accounting import FINAL, Summary, Tracked, summarize, verdicts_written_twice
from .driver import Soak, fault_plan
from .mix import plan
from .services import Service

console = Console()


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=1, help="warm containers per profile")
    parser.add_argument("--worker-kills", type=int, default=4, help="SIGKILLs of a whole worker")
    parser.add_argument("--child-kills", type=int, default=2, help="SIGKILLs of a pool process")
    parser.add_argument("--redis-kills", type=int, default=2)
    parser.add_argument("--patience", type=float, default=900, help="s a client follows one")
    parser.add_argument("--drain", type=float, default=600, help="s to wait after the last fault")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="soak", help="results file name (without suffix)")
    return parser.parse_args(argv)


def stored_records(redis_url: str) -> tuple[dict[str, list[str]], int, dict[str, str]]:
    """From the store itself: ids per soak key, final records, the verdict counters."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        by_key: dict[str, list[str]] = {}
        finals = 0
        for name in client.scan_iter(match=f"{SUBMISSION}*", count=500):
            raw = client.get(name)
            if raw is None:
                continue
            record = json.loads(raw)
            key = (record.get("metadata") or {}).get("soak")
            if isinstance(key, str):
                by_key.setdefault(key, []).append(record["id"])
            finals += record.get("status") in FINAL
        stats = {str(k): str(v) for k, v in client.hgetall(STATS).items()}
    finally:
        client.close()
    return by_key, finals, stats


def slowest(tracked: list[Tracked], count: int = 10) -> list[dict[str, Any]]:
    """The submissions that took longest from created to finished, by the store's own
    timestamps (one host, one clock), with how long each waited queued and its attempts."""
    rows: list[dict[str, Any]] = []
    for item in tracked:
        record = item.final or {}
        stamps = [record.get(k) for k in ("created_at", "started_at", "finished_at")]
        if not all(isinstance(v, str) for v in stamps):
            continue
        created, started, finished = (datetime.fromisoformat(str(v)) for v in stamps)
        rows.append(
            {
                "key": item.planned.key,
                "id": record.get("id"),
                "label": item.planned.label,
                "seconds": round((finished - created).total_seconds(), 1),
                "last_start_after": round((started - created).total_seconds(), 1),
                "attempts": record.get("attempts"),
                "verdict": (record.get("result") or {}).get("status"),
            }
        )
    rows.sort(key=lambda r: r["seconds"], reverse=True)
    return rows[:count]


def report(summary: Summary, extra: dict[str, Any]) -> None:
    table = Table(title="soak: every figure but the first two must be 0")
    table.add_column("figure")
    table.add_column("count", justify="right")
    for name, value in summary.figures().items():
        bad = name not in ("accepted", "graded") and value
        table.add_row(name, f"[red]{value}" if bad else str(value))
    console.print(table)
    kinds = Table(title="by kind")
    columns = ["planned", "accepted", "graded", "wrong", "lost", "stuck"]
    kinds.add_column("kind")
    for column in columns:
        kinds.add_column(column, justify="right")
    for kind, counts in summary.by_kind.items():
        kinds.add_row(kind, *(str(counts.get(c, 0)) for c in columns))
    console.print(kinds)
    console.print(
        f"faults: {len(extra['faults'])}, restarts: {extra['restarts']}, "
        f"POST retries: {extra['post_retries']} ({extra['replays']} replays), "
        f"poll retries: {extra['poll_retries']}, wall: {extra['wall_seconds']:.0f} s"
    )
    for problem in summary.problems[:20]:
        console.print(f"[red]{problem}")


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)  # noqa: S311 (a seed, not a secret)
    rng = random.Random(seed)  # noqa: S311 (reproducible faults, not secrets)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    settings = Settings()
    planned = plan(args.submissions, seed, settings.api.challenges_root, run_id=run_id)
    faults = fault_plan(
        rng,
        worker_kills=args.worker_kills,
        child_kills=args.child_kills,
        redis_kills=args.redis_kills,
    )
    folder = Path(tempfile.mkdtemp(prefix="grader-soak-"))
    # The deployment given (GRADER_SANDBOX__DEPLOYMENT), or one of this run's own: the soak
    # reaps every sandbox of its deployment on the way out, never another stack's.
    deployment = os.environ.get("GRADER_SANDBOX__DEPLOYMENT") or f"soak-{run_id.lower()}"
    service = Service(
        folder,
        deployment,
        workers=args.workers,
        concurrency=args.worker_concurrency,
        pool_size=args.pool_size,
    )
    # SIGTERM as Ctrl-C: everything started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    console.print(
        f"soak {run_id}: {args.submissions} submissions, concurrency {args.concurrency}, "
        f"{args.workers} workers, seed {seed}, sandboxes labelled {deployment}, logs in {folder}"
    )
    started = time.monotonic()
    try:
        service.start()
        tracked, soak = run(service, planned, faults, args, rng)
        by_key, finals, stats = stored_records(service.redis.url)
    finally:
        service.close()
    summary = summarize(tracked, by_key, verdicts_written_twice(stats, finals))
    extra = {
        "run_id": run_id,
        "seed": seed,
        "submissions": args.submissions,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "worker_concurrency": args.worker_concurrency,
        "faults": soak.progress.faults,
        "restarts": dict(service.restarts),
        "post_retries": soak.progress.post_retries,
        "poll_retries": soak.progress.poll_retries,
        "replays": soak.progress.replays,
        "wall_seconds": time.monotonic() - started,
        "final_records_in_store": finals,
        "verdict_counters": {
            k: int(v) for k, v in sorted(stats.items()) if k.startswith("verdict:")
        },
        "logs": str(folder),
        "slowest": slowest(tracked),
    }
    report(summary, extra)
    write(args.out, args.name, summary, extra)
    return 0 if summary.ok else 1


def run(
    service: Service,
    planned: list[Any],
    faults: list[Any],
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[list[Tracked], Soak]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        soak = Soak(
            service,
            planned,
            faults,
            concurrency=args.concurrency,
            patience=args.patience,
            drain=args.drain,
            rng=rng,
            say=bar.console.print,
        )
        accepted = bar.add_task("accepted", total=len(planned))
        final = bar.add_task("final", total=len(planned))
        done = threading.Event()

        def refresh() -> None:
            ticks = 0
            while True:
                stop = done.wait(1.0)
                ticks += 1
                if not console.is_terminal and ticks % 30 == 0:  # a log gets a line now and then
                    console.print(
                        f"[{ticks:6d} s] accepted {soak.progress.accepted}/{len(planned)}, "
                        f"final {soak.progress.final}, faults {len(soak.progress.faults)}"
                    )
                bar.update(accepted, completed=soak.progress.accepted)
                bar.update(final, completed=soak.progress.final)
                bar.update(
                    final,
                    description=f"final (faults {len(soak.progress.faults)}/{len(faults)}, "
                    f"POST retries {soak.progress.post_retries}, "
                    f"replays {soak.progress.replays})",
                )
                if stop:
                    return

        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            tracked = asyncio.run(soak.run())
        finally:
            done.set()
            thread.join()
    return tracked, soak


def write(out: Path, name: str, summary: Summary, extra: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    body = {
        **extra,
        "figures": summary.figures(),
        "ok": summary.ok,
        "planned": summary.planned,
        "refused": summary.refused,
        "verdicts_written_twice": summary.extra_verdicts,
        "by_kind": summary.by_kind,
        "problems": summary.problems,
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    console.print(f"summary written to {path}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
