"""gVisor (``runsc``) as a second boundary: registering it with the Docker engine.

The Debian package ``runsc`` needs a registry nowhere. The engine learns of it from
``/etc/docker/daemon.json`` and a ``SIGHUP`` (running containers are untouched). ``runsc``
runs with ``--network=none`` (without it every container fails to start here, even with
``network_mode="none"``) and ``--oci-seccomp`` (without it our seccomp policy is not applied
inside the sandbox).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ..errors import SandboxError
from ..settings import ReuseMode, ReuseSettings
from .engine import DockerClient, engine_errors

RUNTIME = "runsc"
RUNSC_PATH = "/usr/bin/runsc"
RUNSC_ARGS = ("--network=none", "--oci-seccomp")
DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKER_PID = Path("/var/run/docker.pid")


def reuse_for(runtime: str | None, reuse: ReuseSettings | None) -> ReuseSettings:
    """``reuse`` (off when None), refused under runsc: reuse mode's restore verification reads
    the memory cgroup and kernel tables as Linux shows them, gVisor's differ (docs/security.md)."""
    settings = reuse or ReuseSettings()
    if runtime == RUNTIME and settings.mode is not ReuseMode.OFF:
        raise SandboxError("reuse mode is not available with runtime runsc")
    return settings


def with_runsc(config: dict[str, Any], path: str = RUNSC_PATH) -> dict[str, Any]:
    """``daemon.json``'s settings with ``runsc`` registered; every other setting kept."""
    runtimes = dict(config.get("runtimes") or {})
    runtimes[RUNTIME] = {"path": path, "runtimeArgs": list(RUNSC_ARGS)}
    return {**config, "runtimes": runtimes}


def register(daemon_json: Path = DAEMON_JSON, path: str = RUNSC_PATH) -> bool:
    """Write ``runsc`` into ``daemon_json`` (atomically); False when it was there already."""
    if not Path(path).is_file():
        raise SandboxError(f"{path} is missing: install the Debian package runsc first")
    try:
        current = json.loads(daemon_json.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        current = {}
    except ValueError as exc:
        raise SandboxError(f"{daemon_json} is not JSON ({exc}); fix it by hand first") from None
    wanted = with_runsc(current, path)
    if wanted == current:
        return False
    daemon_json.parent.mkdir(parents=True, exist_ok=True)
    temporary = daemon_json.with_suffix(".json.grader-tmp")
    temporary.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    temporary.replace(daemon_json)
    return True


def reload_engine(pid_file: Path = DOCKER_PID) -> None:
    """Ask dockerd to re-read its configuration (``SIGHUP``; containers keep running)."""
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise SandboxError(f"cannot find dockerd's pid in {pid_file}: {exc}") from None
    os.kill(pid, signal.SIGHUP)


def runtimes(client: DockerClient) -> set[str]:
    """The runtimes the engine offers now."""
    with engine_errors("cannot read the engine's runtimes"):
        return set((client.info().get("Runtimes") or {}).keys())


def wait_for_runsc(client: DockerClient, timeout: float = 15.0) -> bool:
    """Whether the engine lists ``runsc`` within ``timeout`` seconds (after a reload)."""
    deadline = time.monotonic() + timeout
    while RUNTIME not in runtimes(client):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
