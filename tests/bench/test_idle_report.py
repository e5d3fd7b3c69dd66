"""The idle benchmark's accounting: what it sums, what it leaves out."""

from __future__ import annotations

import argparse

from bench.idle import _report, _spent


def test_spent_counts_only_chosen_processes_alive_at_both_readings() -> None:
    before = {10: ("dockerd", 5.0), 11: ("containerd", 2.0), 12: ("python3", 1.0)}
    after = {
        10: ("dockerd", 5.5),
        11: ("containerd", 2.25),
        12: ("python3", 9.0),
        13: ("dockerd", 4.0),  # started between the readings: not counted
    }

    spent = _spent(before, after, lambda _pid, name: name in ("dockerd", "containerd"))

    assert spent == 0.75


def test_spent_never_counts_a_reused_pid_as_negative() -> None:
    before = {10: ("dockerd", 5.0)}
    after = {10: ("dockerd", 1.0)}  # the pid went to a new process with less CPU

    assert _spent(before, after, lambda _pid, _name: True) == 0.0


def test_report_totals_the_parts_and_adds_only_the_new_checks() -> None:
    args = argparse.Namespace(seconds=60.0, pool_size=1)
    spent = {"redis-server": 0.002, "API (uvicorn)": 0.003, "engine": -0.001}
    checks = {
        "worker, old: celery inspect ping (every 10 s)": (0.8, 10),
        "worker, new: find on the heartbeat file (every 10 s)": (0.002, 10),
        "API, new: bash /dev/tcp GET /healthz (every 10 s)": (0.001, 10),
    }

    text = _report(spent, checks, args, (0.004, 0.003), {"bare": (4, 0.2)})

    assert "| **stack without health checks** | **0.40** |" in text
    assert "| bare | 4 | 0.200 |" in text
    assert "| worker, old: celery inspect ping (every 10 s) | 0.800 | 8.00 |" in text
    assert "used 0.40 % of one core in the 20 s before" in text
    assert text.endswith("Idle stack with the new checks: **0.43 % of one core**.")
