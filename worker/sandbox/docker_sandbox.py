"""The Docker sandbox: the only module of the worker that talks to the engine.

One fresh container per run, never reused, hardened at creation (docs/security.md). The
submission goes in over the attach stream's stdin; the supervisor's report comes back over
the attach stream's stdout, byte-capped. Docker's exceptions are translated into
``SandboxError`` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import docker.types
import structlog

from grader.constants import (
    ENV_IMAGE_REPO,
    HARNESS_COMMAND,
    HARNESS_PROTOCOL_VERSION,
    LABEL_ENVIRONMENT,
    LABEL_PACKAGES,
    LABEL_PREFIX,
    LABEL_PREIMPORT,
    LABEL_ROLE,
    SANDBOX_UID,
    SANDBOX_WORKDIR,
)
from grader.domain import EnvironmentRef, Limits, Observation, RunRequest, RunStatus
from grader.errors import GraderError, HarnessProtocolError, ImageNotBuilt, SandboxError
from grader.settings import SandboxSettings

from .pool import Activity, WarmPool
from .profiles import Profile, profile_for
from .report import FinalReport, ReadyEvent, parse_line, to_observation
from .seccomp import load_profile
from .stream import AttachStream

log = structlog.get_logger(__name__)
ROLE_SANDBOX = "sandbox"
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
LABEL_EXPIRES = f"{LABEL_PREFIX}.expires"
BUILTIN_PROFILE = "builtin"
"""Use the seccomp profile shipped in ``seccomp.json``; ``None`` means the engine's default."""
READY_TIMEOUT = 30.0
"""Seconds a fresh container may take to import its packages and say it is ready."""
REMOVAL_DEFER_MAX = 5.0
"""Seconds a finished container's removal may wait for a moment without runs."""
PoolKey = tuple[str, Profile]
"""What a warm container is ready for: an environment and a pre-import profile."""
_TMPFS_OPTIONS = f"uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700,noexec,nosuid,nodev"


@dataclass(frozen=True)
class ResolvedImage:
    """An environment's image as the engine has it."""

    environment: EnvironmentRef
    preimport: tuple[str, ...]
    packages: dict[str, str]


@dataclass
class Sandboxed:
    """A started container whose harness is ready and waits for exactly one submission."""

    stream: AttachStream
    image: ResolvedImage
    limits: Limits
    expires: float
    profile: Profile = Profile.FULL


def host_config_kwargs(
    limits: Limits, *, seccomp: str | None, runtime: str | None
) -> dict[str, Any]:
    """Every hardening setting of a sandbox container, as ``create_host_config`` arguments."""
    fsize = limits.tmpfs_mib * 1024 * 1024
    security = ["no-new-privileges:true"]
    if seccomp is not None:
        security.append(f"seccomp={seccomp}")
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            SANDBOX_WORKDIR: f"size={limits.tmpfs_mib}m,nr_inodes=4096,{_TMPFS_OPTIONS}",
            "/tmp": f"size=1m,nr_inodes=256,{_TMPFS_OPTIONS}",  # noqa: S108  inside the sandbox
        },
        "cap_drop": ["ALL"],
        "security_opt": security,
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_mib * 1024 * 1024,
        "memswap_limit": limits.memory_mib * 1024 * 1024,
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": [
            docker.types.Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
            docker.types.Ulimit(name="core", soft=0, hard=0),
        ],
        "init": False,  # the harness supervisor is PID 1 and reaps every zombie itself
        "log_config": docker.types.LogConfig(type="none"),
        "ipc_mode": "private",
        "shm_size": 1024 * 1024,  # /dev/shm is another tmpfs: keep it tiny
        "runtime": runtime,
    }


class DockerSandbox:
    """Runs snippets in fresh, locked-down containers built from environment images."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        runtime: str | None = None,
        seccomp_profile: str | None = BUILTIN_PROFILE,
        report_max_bytes: int = 4 * 1024 * 1024,
        grace_seconds: float = 2.0,
        owner: str | None = None,
        repository: str = ENV_IMAGE_REPO,
        preimport: bool = True,
    ) -> None:
        self._client = client
        self._runtime = runtime
        # Our own profile by default: the engine's still allows io_uring and AF_VSOCK here.
        self._seccomp = load_profile() if seccomp_profile == BUILTIN_PROFILE else seccomp_profile
        self._report_max = report_max_bytes
        self._grace = grace_seconds
        self._repository = repository
        self._preimport = preimport
        self._closing = threading.Event()
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
        self._removals_lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self.owner = owner or uuid.uuid4().hex[:12]
        self._images: dict[str, ResolvedImage] = {}
        self.activity = Activity()
        """Runs in progress; refills and removals wait for a moment without any."""
        self.pool: WarmPool[PoolKey, Sandboxed] | None = None

    @classmethod
    def from_env(cls, **kwargs: Any) -> DockerSandbox:
        """A sandbox on the local engine (``DOCKER_HOST`` and friends are honoured)."""
        try:
            client = docker.from_env(timeout=60)
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot reach the Docker engine: {exc}") from None
        return cls(client, **kwargs)

    @classmethod
    def from_settings(
        cls, settings: SandboxSettings, repository: str = ENV_IMAGE_REPO, **kwargs: Any
    ) -> DockerSandbox:
        """A sandbox configured by the ``sandbox`` section of the settings."""
        return cls.from_env(
            runtime=settings.runtime,
            report_max_bytes=settings.report_max_bytes,
            grace_seconds=settings.harness_grace_seconds,
            repository=repository,
            **kwargs,
        )

    def start_reaper(self, interval: float) -> None:
        """Remove expired sandbox containers now and every ``interval`` seconds."""
        self.reap(expired_only=True)
        if self._reaper is not None:
            return

        def loop() -> None:
            while not self._closing.wait(interval):
                try:
                    removed = self.reap(expired_only=True)
                except GraderError as exc:
                    log.warning("reaper_failed", error=str(exc))
                    continue
                if removed:
                    log.info("reaped_orphans", count=removed)

        self._reaper = threading.Thread(target=loop, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """A scope of latency-sensitive work: pool refills and removals wait until it ends."""
        return self.activity.busy()

    def start_pool(
        self, environments: list[str], *, size: int, limits: Limits, ttl: float = 600.0
    ) -> WarmPool[PoolKey, Sandboxed]:
        """Keep ``size`` ready containers per environment and profile (0 disables the pool)."""
        profiles = [Profile.FULL, Profile.BARE] if self._preimport else [Profile.BARE]
        self.pool = WarmPool(
            start=lambda key: self.prestart(key[0], limits, ttl=ttl, profile=key[1]),
            destroy=self.destroy,
            alive=lambda warm: warm.expires > time.time() + 5,
            keys=[(env, profile) for env in environments for profile in profiles],
            size=size,
            accepts=lambda warm, wanted: (
                _container_limits(warm.limits) == _container_limits(wanted)
            ),
            activity=self.activity,
        )
        self.pool.start()
        return self.pool

    def close(self) -> None:
        """Drain the pool and remove every container this sandbox owns."""
        self._closing.set()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._reaper is not None:
            self._reaper.join(timeout=30)
            self._reaper = None
        self.drain_removals()
        self.reap(owner=self.owner)

    # images -------------------------------------------------------------------------------

    def resolve(self, environment: str) -> ResolvedImage:
        """The environment's current image, referenced by id."""
        cached = self._images.get(environment)
        if cached is not None:
            return cached
        try:
            image = self._client.images.get(f"{self._repository}/{environment}:latest")
        except docker.errors.ImageNotFound:
            raise ImageNotBuilt(
                f"environment {environment!r} has no image; run 'grader images build'"
            ) from None
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot inspect the image of {environment}: {exc}") from None
        labels = image.labels or {}
        if labels.get(LABEL_ENVIRONMENT) != environment:
            raise SandboxError(f"image for {environment} lacks its environment label")
        try:
            preimport = tuple(json.loads(labels.get(LABEL_PREIMPORT, "[]")))
            packages = dict(json.loads(labels.get(LABEL_PACKAGES, "{}")))
        except ValueError:
            preimport, packages = (), {}
        resolved = ResolvedImage(
            EnvironmentRef(name=environment, image_id=str(image.id)), preimport, packages
        )
        self._images[environment] = resolved
        return resolved

    # runs ---------------------------------------------------------------------------------

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        """Run ``request`` in a fresh container; what the snippet does is data in the result."""
        with self.busy():
            profile = self.profile_for(environment, request)
            key = (environment, profile)
            warm = self.pool.take(key, limits) if self.pool is not None else None
            box = warm if warm is not None else self.prestart(environment, limits, profile=profile)
            container_id = box.stream.container_id
            try:
                observation = self._execute(box, request, limits, pool_hit=warm is not None)
            except BaseException as exc:
                log.warning("sandbox_run_failed", container_id=container_id, error=repr(exc)[:300])
                self.destroy(box)
                raise
        # The run is over and its report read: remove the container off the caller's path.
        box.stream.close()
        with self._removals_lock:
            self._removals.submit(self._remove_quietly, container_id)
        log.info(
            "sandbox_run",
            container_id=container_id,
            environment=environment,
            status=observation.status.value,
            pool_hit=observation.pool_hit,
            profile=box.profile.value,
            wall_seconds=observation.wall_seconds,
        )
        return observation

    def profile_for(self, environment: str, request: RunRequest) -> Profile:
        """The pre-import profile a run of ``request`` should start from."""
        image = self.resolve(environment)
        return profile_for(request, image.preimport if self._preimport else ())

    def prestart(
        self,
        environment: str,
        limits: Limits,
        *,
        ttl: float | None = None,
        profile: Profile = Profile.FULL,
    ) -> Sandboxed:
        """Create and start a container, and wait until its harness has pre-imported."""
        image = self.resolve(environment)
        lifetime = ttl if ttl is not None else READY_TIMEOUT + limits.wall_seconds + 60
        expires = time.time() + lifetime
        container_id: str | None = None
        try:
            container_id = self._create(image, limits, expires, profile)
            stream = self._attach_and_start(container_id)
        except docker.errors.DockerException as exc:
            if isinstance(exc, docker.errors.ImageNotFound):
                self._images.pop(environment, None)  # rebuilt meanwhile: resolve again next time
            if container_id is not None:
                self._remove(container_id)
            raise SandboxError(f"cannot start a sandbox for {environment}: {exc}") from None
        box = Sandboxed(stream, image, limits, expires, profile)
        try:
            self._await_ready(box)
        except BaseException:
            self.destroy(box)
            raise
        return box

    def destroy(self, box: Sandboxed) -> None:
        """Close the attach stream first (or the exit stalls), then remove the container."""
        box.stream.close()
        self._remove(box.stream.container_id)

    def _create(
        self, image: ResolvedImage, limits: Limits, expires: float, profile: Profile
    ) -> str:
        api = self._client.api
        host_config = api.create_host_config(
            **host_config_kwargs(limits, seccomp=self._seccomp, runtime=self._runtime)
        )
        modules = image.preimport if self._preimport and profile is Profile.FULL else ()
        command = [*HARNESS_COMMAND, "--preimport", *modules]
        created = api.create_container(
            image=image.environment.image_id,
            entrypoint=command[:1],
            command=command[1:],
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            working_dir=SANDBOX_WORKDIR,
            environment={},
            stdin_open=True,
            tty=False,
            network_disabled=True,
            hostname="sandbox",
            labels={
                LABEL_ROLE: ROLE_SANDBOX,
                LABEL_OWNER: self.owner,
                LABEL_ENVIRONMENT: image.environment.name,
                LABEL_EXPIRES: str(int(expires)),
            },
            host_config=host_config,
        )
        return str(created["Id"])

    def _attach_and_start(self, container_id: str) -> AttachStream:
        api = self._client.api
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

    def _await_ready(self, box: Sandboxed) -> ReadyEvent:
        line = box.stream.read_line(time.monotonic() + READY_TIMEOUT)
        if line is None:
            raise SandboxError(
                f"{box.image.environment.name}: the harness never became ready"
                + box.stream.stderr_tail()
            )
        ready: ReadyEvent = parse_line(line, ReadyEvent)
        if ready.preimport_failed:
            raise SandboxError(f"pre-import failed in the image: {ready.preimport_failed}")
        return ready

    def _execute(
        self, box: Sandboxed, request: RunRequest, limits: Limits, *, pool_hit: bool
    ) -> Observation:
        submission = {
            "version": HARNESS_PROTOCOL_VERSION,
            "mode": request.mode.value,
            "entry": request.entry,
            "files": request.files,
            "state": list(request.state),
            "limits": {
                "wall_seconds": limits.wall_seconds,
                "stdout_bytes": limits.stdout_bytes,
                "stderr_bytes": limits.stderr_bytes,
            },
        }
        payload = json.dumps(submission, separators=(",", ":")).encode() + b"\n"
        stream = box.stream
        # The report carries both streams base64-encoded (4/3) plus the child's report.
        stream.stdout_cap = self._report_max + (limits.stdout_bytes + limits.stderr_bytes) * 2
        try:
            stream.send(payload)
        except OSError as exc:
            raise SandboxError(f"cannot send the submission: {exc}") from None
        # The supervisor enforces the wall limit itself; this deadline is the backstop.
        deadline = time.monotonic() + limits.wall_seconds + self._grace
        line = stream.read_line(deadline)
        hit_deadline = line is None and time.monotonic() >= deadline
        stream.close()  # before kill: a half-read attach stream stalls the container's exit
        oom_killed = False
        if line is None:
            oom_killed = bool(self._stop(stream.container_id).get("OOMKilled"))
        base = {
            "environment": box.image.environment,
            "mode": request.mode,
            "container_id": stream.container_id,
            "pool_hit": pool_hit,
        }
        if line is None:
            if oom_killed:
                return Observation(
                    status=RunStatus.MEMORY_LIMIT_EXCEEDED,
                    oom_killed=True,
                    error="the sandbox was killed for memory",
                    **base,
                )
            if hit_deadline:
                return Observation(
                    status=RunStatus.TIME_LIMIT_EXCEEDED,
                    timed_out=True,
                    error="no report before the hard deadline",
                    **base,
                )
            reason = "report over the size cap" if stream.overflow else "no report"
            raise HarnessProtocolError(f"{reason} from the harness" + stream.stderr_tail())
        report: FinalReport = parse_line(line, FinalReport)
        if report.status == "harness_error":
            raise HarnessProtocolError(f"the harness failed: {report.error}")
        return to_observation(
            report,
            environment=box.image.environment,
            mode=request.mode,
            requested_state=request.state,
            oom_killed=False,
            container_id=stream.container_id,
            pool_hit=pool_hit,
        )

    # teardown -------------------------------------------------------------------------------

    def _stop(self, container_id: str) -> dict[str, Any]:
        """Kill (if still running) and return the container's final state."""
        api = self._client.api
        with suppress(docker.errors.APIError):
            api.kill(container_id)
        try:
            api.wait(container_id, timeout=10)
            state: dict[str, Any] = api.inspect_container(container_id)["State"]
        except (docker.errors.DockerException, OSError) as exc:
            raise SandboxError(f"cannot stop container {container_id[:12]}: {exc}") from None
        return state

    def _remove_quietly(self, container_id: str) -> None:
        self.activity.wait_quiet(REMOVAL_DEFER_MAX)  # upkeep: not while a run is going on
        try:
            self._remove(container_id)
        except SandboxError as exc:  # the reaper gets it later; never lose the verdict
            log.warning("container_removal_failed", container_id=container_id, error=str(exc))

    def drain_removals(self) -> None:
        """Wait until every container of a finished run is removed (tests, shutdown)."""
        with self._removals_lock:
            old = self._removals
            self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
        old.shutdown(wait=True)

    def _remove(self, container_id: str) -> None:
        try:
            self._client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise SandboxError(f"cannot remove {container_id[:12]}: {exc}") from None

    def reap(self, *, owner: str | None = None, expired_only: bool = False) -> int:
        """Remove sandbox containers left behind: one owner's, expired ones, or all."""
        try:
            found = self._client.api.containers(all=True, filters=_sandbox_filter(owner))
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot list sandbox containers: {exc}") from None
        now = time.time()
        removed = 0
        for entry in found:
            labels = entry.get("Labels") or {}
            if expired_only and float(labels.get(LABEL_EXPIRES, "0") or 0) > now:
                continue
            self._remove(str(entry["Id"]))
            removed += 1
        return removed

    def count_containers(self, *, owner: str | None = None) -> int:
        """How many sandbox containers exist (of one owner, or in all)."""
        try:
            found = self._client.api.containers(
                all=True, filters=_sandbox_filter(owner), quiet=True
            )
            return len(found)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot list sandbox containers: {exc}") from None


def _sandbox_filter(owner: str | None) -> dict[str, list[str]]:
    """The label filter of our sandbox containers (one owner's, or everyone's)."""
    labels = [f"{LABEL_ROLE}={ROLE_SANDBOX}"]
    if owner is not None:
        labels.append(f"{LABEL_OWNER}={owner}")
    return {"label": labels}


def _container_limits(limits: Limits) -> tuple[object, ...]:
    """The limits fixed when a container is created (the rest travel with the submission)."""
    return (limits.memory_mib, limits.pids, limits.tmpfs_mib, limits.cpus, limits.nofile)
