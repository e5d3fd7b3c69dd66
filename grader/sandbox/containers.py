"""Sandbox containers on the engine: created hardened, attached, stopped, removed, reaped.

Every hardening setting of a sandbox lives in ``host_config_kwargs`` (docs/security.md); every
container carries labels naming its role, its owner (one ``DockerSandbox``) and its expiry, so
that leftovers of a crashed worker are found and removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import structlog

from ..constants import LABEL_ENVIRONMENT, LABEL_PREFIX, LABEL_ROLE, SANDBOX_UID, SANDBOX_WORKDIR
from ..domain import Limits
from ..errors import EngineConflict, GraderError, NotInEngine, SandboxError
from .engine import DockerClient, EnvironmentImage, engine_errors
from .stream import AttachStream

ROLE_SANDBOX = "sandbox"
LABEL_DEPLOYMENT = f"{LABEL_PREFIX}.deployment"
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
LABEL_EXPIRES = f"{LABEL_PREFIX}.expires"
LABEL_PROFILE = f"{LABEL_PREFIX}.profile"
"""What the container was started for: its pre-import profile (``judge``: a reusable judge)."""
log = structlog.get_logger(__name__)
_TMPFS_OPTIONS = f"uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700,noexec,nosuid,nodev"
RUNSC = "runsc"
RUNSC_HOST_PIDS_BASE = 64
RUNSC_HOST_PIDS_PER_TASK = 16
"""Host pids a gVisor sandbox takes (``ptrace`` platform, measured here): about 40 idle, 369
with 64 sleeping processes; 32 processes all forking at once took the sandbox down at 256
and not at 384. Past the host limit gVisor itself dies, report and all."""


def host_config_kwargs(
    limits: Limits, *, seccomp: str | None, runtime: str | None
) -> dict[str, Any]:
    """Every hardening setting of a sandbox container, as ``create_host_config`` arguments.

    Under gVisor (``runsc``) the host's pids cgroup also counts the sandbox kernel's own
    threads: at the snippet's limit a fork bomb would take the whole sandbox down, report and
    all. There the snippet's limit is ``RLIMIT_NPROC``, which gVisor counts per sandbox, and
    the host's limit leaves room for gVisor's own. (Under runc ``RLIMIT_NPROC`` would count
    every process of the uid on the host, so it stays unset.)
    """
    fsize = limits.tmpfs_mib * 1024 * 1024
    security = ["no-new-privileges:true"]
    if seccomp is not None:
        security.append(f"seccomp={seccomp}")
    pids = limits.pids
    ulimits = [
        {"name": "nofile", "soft": limits.nofile, "hard": limits.nofile},
        {"name": "fsize", "soft": fsize, "hard": fsize},
        {"name": "core", "soft": 0, "hard": 0},
    ]
    if runtime == RUNSC:
        pids = RUNSC_HOST_PIDS_BASE + RUNSC_HOST_PIDS_PER_TASK * limits.pids
        ulimits.append({"name": "nproc", "soft": limits.pids, "hard": limits.pids})
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            SANDBOX_WORKDIR: f"size={limits.tmpfs_mib}m,nr_inodes=4096,{_TMPFS_OPTIONS}",
            "/tmp": f"size=1m,nr_inodes=256,{_TMPFS_OPTIONS}",  # noqa: S108  inside the sandbox
            # Our own /dev/shm replaces the engine's (whose shm_size bounds bytes, not files).
            "/dev/shm": f"size=1m,nr_inodes=64,{_TMPFS_OPTIONS}",  # noqa: S108  inside
        },
        "cap_drop": ["ALL"],
        "security_opt": security,
        "pids_limit": pids,
        "mem_limit": limits.memory_mib * 1024 * 1024,
        "memswap_limit": limits.memory_mib * 1024 * 1024,
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": ulimits,
        "init": False,  # the harness supervisor is PID 1 and reaps every zombie itself
        "log_config": {"type": "none"},
        "ipc_mode": "private",
        "runtime": runtime,
    }


def fixed_limits(limits: Limits) -> tuple[object, ...]:
    """The limits fixed when a container is created (the rest travel with the submission)."""
    return (limits.memory_mib, limits.pids, limits.tmpfs_mib, limits.cpus, limits.nofile)


class Containers:
    """The sandbox containers one owner creates on one engine."""

    def __init__(
        self,
        client: DockerClient,
        *,
        owner: str,
        deployment: str,
        seccomp: str | None,
        runtime: str | None,
        report_max_bytes: int,
        reuse_seccomp: str | None = None,
    ) -> None:
        self._client = client
        self.owner = owner
        self.deployment = deployment
        self._seccomp = seccomp
        self._reuse_seccomp = seccomp if reuse_seccomp is None else reuse_seccomp
        self._runtime = runtime
        self._report_max = report_max_bytes

    def create(
        self,
        image: EnvironmentImage,
        limits: Limits,
        expires: float,
        argv: list[str],
        *,
        reuse: bool = False,
        profile: str = "",
    ) -> str:
        """A hardened container of ``image`` that runs the harness; not started yet.

        A container started for ``reuse`` gets the reuse seccomp policy (no POSIX queues).
        """
        api = self._client.api
        seccomp = self._reuse_seccomp if reuse else self._seccomp
        with engine_errors(f"cannot create a sandbox for {image.environment}"):
            host_config = api.create_host_config(
                **host_config_kwargs(limits, seccomp=seccomp, runtime=self._runtime)
            )
            created = api.create_container(
                image=image.image_id,
                entrypoint=argv[:1],
                command=argv[1:],
                user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                working_dir=SANDBOX_WORKDIR,
                environment={},
                stdin_open=True,
                tty=False,
                network_disabled=True,
                hostname="sandbox",
                labels={
                    LABEL_ROLE: ROLE_SANDBOX,
                    LABEL_DEPLOYMENT: self.deployment,
                    LABEL_OWNER: self.owner,
                    LABEL_ENVIRONMENT: image.environment,
                    LABEL_EXPIRES: str(int(expires)),
                    LABEL_PROFILE: profile,
                },
                host_config=host_config,
            )
        return str(created["Id"])

    def attach_and_start(self, container_id: str) -> AttachStream:
        """Attach to stdin/stdout/stderr first (nothing is missed), then start."""
        api = self._client.api
        with engine_errors(f"cannot start sandbox {container_id[:12]}"):
            raw = api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            stream = AttachStream(container_id, getattr(raw, "_sock", raw), raw, self._report_max)
            try:
                api.start(container_id)
            except BaseException:
                stream.close()
                raise
        return stream

    def stop(self, container_id: str) -> dict[str, Any]:
        """Kill (if still running) and return the container's final state."""
        api = self._client.api
        with suppress(SandboxError), engine_errors("kill"):
            api.kill(container_id)
        with engine_errors(f"cannot stop container {container_id[:12]}"):
            api.wait(container_id, timeout=10)
            state: dict[str, Any] = api.inspect_container(container_id)["State"]
        return state

    def remove(self, container_id: str) -> None:
        """Remove the container; one already gone, or being removed, is fine."""
        try:
            with engine_errors(f"cannot remove {container_id[:12]}"):
                self._client.api.remove_container(container_id, force=True)
        except (NotInEngine, EngineConflict):
            return

    def reap(self, *, owner: str | None = None, expired_only: bool = False) -> int:
        """Remove this deployment's containers left behind: one owner's, expired ones, or all.

        Another deployment's sandboxes on the same engine (another service, a test run) are
        never touched.
        """
        with engine_errors("cannot list sandbox containers"):
            found = self._client.api.containers(
                all=True, filters=_sandbox_filter(self.deployment, owner)
            )
        now = time.time()
        removed = 0
        for entry in found:
            labels = entry.get("Labels") or {}
            if expired_only and float(labels.get(LABEL_EXPIRES, "0") or 0) > now:
                continue
            self.remove(str(entry["Id"]))
            removed += 1
        return removed

    def count(self, *, owner: str | None = None) -> int:
        """How many of this deployment's sandbox containers exist (of one owner, or in all)."""
        with engine_errors("cannot list sandbox containers"):
            found = self._client.api.containers(
                all=True, filters=_sandbox_filter(self.deployment, owner), quiet=True
            )
        return len(found)

    def close_idle_connections(self) -> None:
        """Let go of the client's idle keep-alive connections (it stays usable)."""
        self._client.close()


def _sandbox_filter(deployment: str, owner: str | None) -> dict[str, list[str]]:
    """The label filter of one deployment's sandbox containers (one owner's, or all)."""
    labels = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_DEPLOYMENT}={deployment}"]
    if owner is not None:
        labels.append(f"{LABEL_OWNER}={owner}")
    return {"label": labels}


class Reaper:
    """A thread that calls ``reap`` (remove expired sandboxes) every ``interval`` seconds."""

    def __init__(self, reap: Callable[[], int]) -> None:
        self._reap = reap
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval: float) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    removed = self._reap()
                except GraderError as exc:
                    log.warning("reaper_failed", error=str(exc))
                    continue
                if removed:
                    log.info("reaped_orphans", count=removed)

        self._thread = threading.Thread(target=loop, name="sandbox-reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
