"""The Docker sandbox: ``run`` an environment's snippet in a container, get an Observation.

Strict by default: one fresh container per run, hardened at creation (``containers.py``,
docs/security.md). The submission goes in over the attach stream's stdin; the supervisor's
report comes back over its stdout, byte-capped (``protocol.py``). A warm pool takes the
start-up off the submission's path (``pool.py``); reuse mode, opt-in, lets a container restored
and verified after a plain run serve its tenant again (``reuse.py``).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from ..constants import ENV_IMAGE_REPO
from ..domain import Limits, Observation, RunRequest
from ..errors import ConfigError, HarnessProtocolError, NotInEngine, SandboxError
from ..settings import ReuseSettings, SandboxSettings
from . import gvisor
from .containers import Containers, Reaper, fixed_limits
from .engine import DockerClient, EnvironmentImage, connect, environment_image
from .isolated import run_isolated
from .pool import Activity, WarmPool
from .preimport import PreimportProfile, learner_profile_for, modules_for, profile_for
from .protocol import FinalReport, HarnessSubmission, ReadyEvent, harness_argv, parse_line
from .ready import ReadyContainer
from .report import noting_foreign_lines, tampered_channel, to_observation, without_report
from .reuse import Shelf, judge_shelf
from .seccomp import seccomp_policy

log = structlog.get_logger(__name__)
BUILTIN_SECCOMP = "builtin"
"""Use the seccomp policy shipped in ``seccomp.json``; ``None`` means the engine's default."""
READY_TIMEOUT = 30.0
"""Seconds a fresh container may take to import its packages and say it is ready."""
REMOVAL_DEFER_MAX = 5.0
"""Seconds a finished container's removal may wait for a moment without runs."""
DEFAULT_DEPLOYMENT = "default"  # the label when none is configured (GRADER_SANDBOX__DEPLOYMENT)
PoolKey = tuple[str, PreimportProfile]
"""What a warm container is ready for: an environment and a pre-import profile."""


class DockerSandbox:
    """Runs snippets in fresh, locked-down containers built from environment images."""

    def __init__(
        self,
        client: DockerClient,
        *,
        runtime: str | None = None,
        seccomp: str | None = BUILTIN_SECCOMP,
        report_max_bytes: int = 4 * 1024 * 1024,
        grace_seconds: float = 2.0,
        owner: str | None = None,
        deployment: str = DEFAULT_DEPLOYMENT,
        repository: str = ENV_IMAGE_REPO,
        preimport: bool = True,
        reuse: ReuseSettings | None = None,
    ) -> None:
        self._client = client
        self.owner = owner or uuid.uuid4().hex[:12]
        settings = gvisor.reuse_for(runtime, reuse)
        self.shelf = Shelf(settings, self.release)
        self.judges = judge_shelf(settings, runtime, self.release)
        """Used judge containers of isolated runs, restored and verified, per hidden-test suite."""
        # Our own policy by default: the engine's still allows io_uring and AF_VSOCK here.
        builtin = seccomp == BUILTIN_SECCOMP
        on_gvisor = runtime == gvisor.RUNTIME
        policy = seccomp_policy(reuse=self.shelf.enabled, gvisor=on_gvisor) if builtin else seccomp
        self.containers = Containers(
            client,
            owner=self.owner,
            deployment=deployment,
            seccomp=policy,
            runtime=runtime,
            report_max_bytes=report_max_bytes,
            reuse_seccomp=seccomp_policy(reuse=True, gvisor=on_gvisor) if builtin else seccomp,
        )
        self.report_max = report_max_bytes
        self.grace = grace_seconds
        self._repository = repository
        self._preimport = preimport
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
        self._removals_lock = threading.Lock()
        self._reaper = Reaper(lambda: self.reap(expired_only=True))
        self._images: dict[str, EnvironmentImage] = {}
        self.activity = Activity()
        """Runs in progress; refills and removals wait for a moment without any."""
        self.pool: WarmPool[PoolKey, ReadyContainer] | None = None

    @classmethod
    def from_env(cls, **kwargs: Any) -> DockerSandbox:
        """A sandbox on the local engine (``DOCKER_HOST`` and friends are honoured)."""
        return cls(connect(), **kwargs)

    @classmethod
    def from_settings(
        cls, settings: SandboxSettings, repository: str = ENV_IMAGE_REPO, **kwargs: Any
    ) -> DockerSandbox:
        """A sandbox configured by the ``sandbox`` section of the settings."""
        return cls.from_env(
            runtime=settings.runtime,
            report_max_bytes=settings.report_max_bytes,
            grace_seconds=settings.harness_grace_seconds,
            deployment=settings.deployment,
            repository=repository,
            reuse=settings.reuse,
            **kwargs,
        )

    # lifecycle ----------------------------------------------------------------------------

    def start_reaper(self, interval: float) -> None:
        """Remove expired sandbox containers now and every ``interval`` seconds."""
        self.reap(expired_only=True)
        self._reaper.start(interval)

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """A scope of latency-sensitive work: pool refills and removals wait until it ends."""
        return self.activity.busy()

    def start_pool(
        self, environments: list[str], *, size: int, limits: Limits, ttl: float = 3600.0
    ) -> WarmPool[PoolKey, ReadyContainer]:
        """Keep ``size`` ready containers per environment and profile (0 disables the pool).

        Judges (``judge`` profile, when judges are reused) are kept at one: used ones wait
        on ``judges`` for their suite's next run. A container is handed out only while a
        whole run fits before its ``ttl`` ends, so ``ttl`` must leave room for one.
        """
        margin = limits.wall_seconds + self.grace + 10
        if ttl <= margin:
            raise ConfigError(f"pool ttl {ttl:g} s leaves no room for a {margin:g} s run")
        profiles = [PreimportProfile.BARE]
        if self._preimport:  # ``serve``: the learner's side of isolated runs
            profiles = [PreimportProfile.FULL, PreimportProfile.BARE, PreimportProfile.SERVE]
        if self.judges.enabled:
            profiles.append(PreimportProfile.JUDGE)
        self.pool = WarmPool(
            start=lambda key: self.prestart(key[0], limits, ttl=ttl, profile=key[1]),
            destroy=self.destroy,
            # Handed out only with time for a whole run left: the reaper removes it once expired.
            alive=lambda ready: ready.expires > time.time() + margin,
            keys=[(env, profile) for env in environments for profile in profiles],
            size=size,
            accepts=lambda ready, wanted: fixed_limits(ready.limits) == fixed_limits(wanted),
            activity=self.activity,
            # A judge is taken from the pool only for a suite's first run or to replace one.
            sizes={(env, PreimportProfile.JUDGE): min(size, 1) for env in environments},
        )
        self.pool.start()
        return self.pool

    def close(self) -> None:
        """Drain the pool and remove every container this sandbox owns."""
        self._reaper.stop()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.shelf.close()
        self.judges.close()
        self.drain_removals()
        self.reap(owner=self.owner)

    # images -------------------------------------------------------------------------------

    def resolve(self, environment: str) -> EnvironmentImage:
        """The environment's current image, referenced by id (cached until it disappears)."""
        cached = self._images.get(environment)
        if cached is None:
            cached = environment_image(self._client, environment, self._repository)
            self._images[environment] = cached
        return cached

    # runs ---------------------------------------------------------------------------------

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        """Run ``request`` in a fresh container; what the snippet does is data in the result.

        A submission larger than the harness accepts is refused (``LimitsError``) before any
        container is taken.
        """
        if request.learner is not None:
            return run_isolated(self, environment, request, limits)
        line = HarnessSubmission.of(request, limits).line()
        tenant = self.shelf.tenant_of(request)
        with self.busy():
            ready, warm = self.take(environment, request, limits, tenant=tenant)
            try:
                observation = self._execute(
                    ready, line, request, limits, pool_hit=warm, keep=tenant is not None
                )
            except BaseException as exc:
                log.warning(
                    "sandbox_run_failed", container_id=ready.container_id, error=repr(exc)[:300]
                )
                self.destroy(ready)
                raise
        if tenant is None:
            self.release(ready)
        else:
            self.shelf.after_run(ready, observation, tenant)
        log.info(
            "sandbox_run",
            container_id=ready.container_id,
            environment=environment,
            status=observation.status.value,
            pool_hit=observation.pool_hit,
            profile=ready.profile.value,
            wall_seconds=observation.wall_seconds,
        )
        return observation

    def take(
        self,
        environment: str,
        request: RunRequest,
        limits: Limits,
        *,
        tenant: str | None = None,
        profile: PreimportProfile | None = None,
    ) -> tuple[ReadyContainer, bool]:
        """A ready container for ``request``: a warm one when the pool has it (then True).

        With a ``tenant`` (reuse mode) a used container of that tenant comes first. The
        ``profile`` is the request's own (``profile_for``) unless given.
        """
        profile = profile or self.profile_for(environment, request)
        if tenant is not None:
            used = self.shelf.take((environment, profile), tenant, limits)
            if used is not None:
                return used, True
        warm = self.pool.take((environment, profile), limits) if self.pool is not None else None
        return warm or self.prestart(environment, limits, profile=profile), warm is not None

    def release(self, ready: ReadyContainer) -> None:
        """The run is over and its report read: remove the container off the caller's path."""
        ready.stream.close()
        with self._removals_lock:
            self._removals.submit(self._remove_quietly, ready.container_id)

    def profile_for(self, environment: str, request: RunRequest) -> PreimportProfile:
        """The pre-import profile a run of ``request`` should start from."""
        image = self.resolve(environment)
        return profile_for(request, image.preimport if self._preimport else ())

    def learner_profile(self, environment: str, files: dict[str, str]) -> PreimportProfile:
        """The pre-import profile of an isolated run's learner container (``files``)."""
        image = self.resolve(environment)
        return learner_profile_for(files, image.preimport if self._preimport else ())

    def prestart(
        self,
        environment: str,
        limits: Limits,
        *,
        ttl: float | None = None,
        profile: PreimportProfile = PreimportProfile.FULL,
    ) -> ReadyContainer:
        """Create and start a container, and wait until its harness has pre-imported."""
        image = self.resolve(environment)
        lifetime = ttl if ttl is not None else READY_TIMEOUT + limits.wall_seconds + 60
        reuse = self.shelf.enabled or profile is PreimportProfile.JUDGE
        if reuse:  # the reaper must not remove a container that may still serve runs
            lifetime = max(lifetime, self.shelf.settings.max_age_seconds + 60)
        expires = time.time() + lifetime
        modules = modules_for(profile, image.preimport) if self._preimport else ()
        argv = harness_argv(modules, reuse=reuse)
        container_id: str | None = None
        try:
            container_id = self.containers.create(
                image, limits, expires, argv, reuse=reuse, profile=profile.value
            )
            stream = self.containers.attach_and_start(container_id)
        except SandboxError as exc:
            if isinstance(exc, NotInEngine):
                self._images.pop(environment, None)  # rebuilt meanwhile: resolve again next time
            if container_id is not None:
                self.containers.remove(container_id)
            raise SandboxError(f"cannot start a sandbox for {environment}: {exc}") from None
        ready = ReadyContainer(stream, image, limits, expires, profile, reuse=reuse)
        try:
            self._await_ready(ready)
        except BaseException:
            self.destroy(ready)
            raise
        return ready

    def destroy(self, ready: ReadyContainer) -> None:
        """Close the attach stream first (or the exit stalls), then remove the container."""
        ready.stream.close()
        self.containers.remove(ready.container_id)

    def _await_ready(self, ready: ReadyContainer) -> ReadyEvent:
        line = ready.stream.read_line(time.monotonic() + READY_TIMEOUT)
        if line is None:
            raise SandboxError(
                f"{ready.image.environment}: the harness never became ready"
                + ready.stream.stderr_tail()
            )
        event: ReadyEvent = parse_line(line, ReadyEvent)
        ready.stream.key = event.key  # every later line of the supervisor's carries it
        if event.preimport_failed:
            raise SandboxError(f"pre-import failed in the image: {event.preimport_failed}")
        return event

    def execute(
        self, ready: ReadyContainer, request: RunRequest, limits: Limits, *, pool_hit: bool
    ) -> Observation:
        """Hand ``request`` to a ready container and read its report (not removed here)."""
        line = HarnessSubmission.of(request, limits).line()
        return self._execute(ready, line, request, limits, pool_hit=pool_hit)

    def _execute(
        self,
        ready: ReadyContainer,
        line: bytes,
        request: RunRequest,
        limits: Limits,
        *,
        pool_hit: bool,
        keep: bool = False,
    ) -> Observation:
        """Send ``line``, read the report; ``keep`` the attach stream open when a report came."""
        stream = ready.stream
        runs = max(1, len(request.cases))  # each case's two streams come back base64 (4/3)
        stream.stdout_cap = self.report_max + (limits.stdout_bytes + limits.stderr_bytes) * 2 * runs
        try:
            stream.send(line)
        except OSError as exc:  # it ended taking it in (gVisor: killed for memory, Sentry too)
            return self._without_report(ready, request, pool_hit=pool_hit, unsent=exc)
        deadline = time.monotonic() + limits.wall_seconds + self.grace  # PID 1's is the limit
        if (answer := stream.read_keyed(deadline)) is None:
            late = time.monotonic() >= deadline
            return self._without_report(ready, request, pool_hit=pool_hit, deadline=late)
        if not keep:
            stream.close()  # before kill: a half-read attach stream stalls the container's exit
        report: FinalReport = parse_line(answer, FinalReport)
        if report.status == "harness_error":
            raise HarnessProtocolError(f"the harness failed: {report.error}")
        observation = to_observation(
            report,
            environment=ready.image.ref,
            mode=request.mode,
            requested_state=request.state,
            oom_killed=False,
            container_id=ready.container_id,
            pool_hit=pool_hit,
            wall_limit=limits.wall_seconds,
        )
        return noting_foreign_lines(observation, stream.foreign_lines)

    def _without_report(
        self, ready: ReadyContainer, request: RunRequest, *, pool_hit: bool, **why: Any
    ) -> Observation:
        """No report (past the ``deadline``, or ``unsent``): did memory or time end the run?"""
        ready.stream.close()  # before kill: a half-read attach stream stalls the exit
        oom_killed = bool(self.containers.stop(ready.container_id).get("OOMKilled"))
        base: dict[str, Any] = {"environment": ready.image.ref, "mode": request.mode}
        base.update(container_id=ready.container_id, pool_hit=pool_hit)
        found = without_report(oom_killed, bool(why.get("deadline")), **base)
        if found is not None:
            return found
        if ready.stream.tampered:  # the snippet wrote into the report channel (gVisor)
            return tampered_channel(**base)
        if why.get("unsent") is not None:
            raise SandboxError(f"cannot send the submission: {why['unsent']}") from None
        reason = "report over the size cap" if ready.stream.overflow else "no report"
        raise HarnessProtocolError(f"{reason} from the harness" + ready.stream.stderr_tail())

    # teardown -------------------------------------------------------------------------------

    def _remove_quietly(self, container_id: str) -> None:
        self.activity.wait_quiet(REMOVAL_DEFER_MAX)  # upkeep: not while a run is going on
        try:
            self.containers.remove(container_id)
        except SandboxError as exc:  # the reaper gets it later; never lose the verdict
            log.warning("container_removal_failed", container_id=container_id, error=str(exc))

    def drain_removals(self) -> None:
        """Wait until every container of a finished run is removed (tests, shutdown)."""
        with self._removals_lock:
            old = self._removals
            self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
        old.shutdown(wait=True)

    def reap(self, *, owner: str | None = None, expired_only: bool = False) -> int:
        """Remove this deployment's containers left behind: one owner's, expired ones, or all."""
        return self.containers.reap(owner=owner, expired_only=expired_only)

    def count_containers(self, *, owner: str | None = None) -> int:
        """How many of this deployment's sandbox containers exist (of one owner, or in all)."""
        return self.containers.count(owner=owner)
