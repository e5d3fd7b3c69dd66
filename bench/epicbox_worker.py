"""The epicbox peer, run from its own venv (bench/.venv-epicbox) as a long-lived worker.

epicbox 1.1.0 pins old ``docker``/``urllib3``/``requests``, so it cannot share our
environment. The benchmark starts this script once and keeps it alive, so the venv's start-up
is never counted. Protocol, one JSON object per line:

- in (stdin): ``{"op": "run", "id": 7, "mode": "pytest"|"script", "code": "..."}`` or
  ``{"op": "quit"}``; requests are served concurrently, one thread each.
- out (stdout): ``{"event": "ready", ...}`` once, then per request ``{"event": "result",
  "id": 7, "latency": 0.91, "exit_code": 0, "stdout": "...", "peak_bytes": ..., ...}``.

``latency`` is the wall time of one ``epicbox.run`` call: create the container, upload the
files, start, attach, wait for the exit, inspect, remove. Standard library and epicbox only.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import epicbox
import epicbox.sandboxes

PROFILE = "bench"
WORKDIR = "/sandbox"
_out_lock = threading.Lock()


def emit(event: dict[str, Any]) -> None:
    line = json.dumps(event, separators=(",", ":")) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def peak_from(stderr: str) -> int | None:
    """The launcher's last stderr line carries the container's peak memory."""
    for line in reversed(stderr.strip().splitlines()):
        if line.startswith('{"bench_peak_bytes"'):
            value = json.loads(line)["bench_peak_bytes"]
            return int(value) if value is not None else None
    return None


def run_one(request: dict[str, Any], launcher: bytes, limits: dict[str, int]) -> dict[str, Any]:
    name = "test_snippet.py" if request["mode"] == "pytest" else "main.py"
    files = [
        {"name": "launcher.py", "content": launcher},
        {"name": name, "content": request["code"].encode()},
    ]
    command = f"/opt/venv/bin/python -I -B {WORKDIR}/launcher.py {request['mode']} {WORKDIR}/{name}"
    started = time.monotonic()
    try:
        # epicbox merges defaults into the dict it is given: hand it a copy each time.
        result = epicbox.run(PROFILE, command, files=files, limits=dict(limits))
    except Exception as exc:
        return {
            "id": request["id"],
            "latency": time.monotonic() - started,
            "error": f"{type(exc).__name__}: {exc}",
        }
    latency = time.monotonic() - started
    stderr = result["stderr"].decode("utf-8", "replace")
    return {
        "id": request["id"],
        "latency": latency,
        "exit_code": result["exit_code"],
        "stdout": result["stdout"].decode("utf-8", "replace")[-4000:],
        "stderr_tail": stderr[-1000:],
        "peak_bytes": peak_from(stderr),
        "timeout": result["timeout"],
        "oom_killed": result["oom_killed"],
        "error": None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", required=True)
    parser.add_argument("--name-prefix", required=True, help="container names start with this")
    parser.add_argument("--launcher", required=True, type=Path)
    parser.add_argument("--user", default="10001:10001")
    parser.add_argument("--memory-mib", type=int, default=256)
    parser.add_argument("--pids", type=int, default=64)
    parser.add_argument("--cputime", type=int, default=5)
    parser.add_argument("--realtime", type=int, default=15)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    # Container names are the only per-run marker epicbox lets us set: the benchmark removes
    # whatever is left with this prefix if it is interrupted.
    epicbox.sandboxes._SANDBOX_NAME_PREFIX = args.name_prefix
    epicbox.configure(
        profiles=[
            epicbox.Profile(
                PROFILE,
                args.image,
                user=args.user,
                read_only=False,  # files are uploaded into the container: the root must be rw
                network_disabled=True,
            )
        ]
    )
    limits = {
        "cputime": args.cputime,
        "realtime": args.realtime,
        "memory": args.memory_mib,
        "processes": args.pids,
    }
    launcher = args.launcher.read_bytes()
    emit({"event": "ready", "epicbox": version("epicbox"), "docker_py": version("docker")})

    def serve(request: dict[str, Any]) -> None:
        emit({"event": "result", **run_one(request, launcher, limits)})

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for raw in sys.stdin:
            request = json.loads(raw)
            if request.get("op") == "quit":
                break
            pool.submit(serve, request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
