"""The Docker sandbox: the only module of the worker that talks to the engine.

One fresh container per run, never reused, hardened at creation (see docs/security.md). The
submission goes in over the attach stream's stdin; the supervisor's report comes back over
the attach stream's stdout, byte-capped. Docker's exceptions are translated into
``SandboxError`` here and nowhere else.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.types

from grader.constants import (
    ENV_IMAGE_REPO,
    HARNESS_COMMAND,
    HARNESS_PROTOCOL_VERSION,
    LABEL_ENVIRONMENT,
    LABEL_PREFIX,
    LABEL_PREIMPORT,
    LABEL_ROLE,
    SANDBOX_UID,
    SANDBOX_WORKDIR,
)
from grader.domain import EnvironmentRef, Limits, Observation, RunRequest, RunStatus
from grader.errors import HarnessProtocolError, ImageNotBuilt, SandboxError

from .report import FinalReport, ReadyEvent, parse_line, to_observation
from .seccomp import load_profile

ROLE_SANDBOX = "sandbox"
BUILTIN_PROFILE = "builtin"
"""Use the seccomp profile shipped in ``seccomp.json``; ``None`` means the engine's default."""
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
_STDOUT, _STDERR = 1, 2
_HEADER = struct.Struct(">BxxxL")
READY_TIMEOUT = 30.0
"""Seconds a fresh container may take to import its packages and say it is ready."""


@dataclass(frozen=True)
class ResolvedImage:
    """An environment's image as the engine has it."""

    environment: EnvironmentRef
    preimport: tuple[str, ...]


@dataclass
class _Attached:
    """A started container and its attach socket, waiting for (or holding) a submission."""

    container_id: str
    sock: socket.socket
    raw: Any  # keeps docker-py's response object alive while the socket is in use
    image: ResolvedImage
    started: float
    buffer: bytearray = field(default_factory=bytearray)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    overflow: bool = False


def security_options(seccomp_profile: str | None) -> list[str]:
    options = ["no-new-privileges:true"]
    if seccomp_profile is not None:
        options.append(f"seccomp={seccomp_profile}")
    return options


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
    ) -> None:
        self._client = client
        self._runtime = runtime
        # Our own profile by default: the engine's still allows io_uring and AF_VSOCK here.
        self._seccomp = load_profile() if seccomp_profile == BUILTIN_PROFILE else seccomp_profile
        self._report_max = report_max_bytes
        self._grace = grace_seconds
        self.owner = owner or uuid.uuid4().hex[:12]
        self._images: dict[str, ResolvedImage] = {}

    @classmethod
    def from_env(cls, **kwargs: Any) -> DockerSandbox:
        try:
            client = docker.from_env(timeout=60)
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot reach the Docker engine: {exc}") from None
        return cls(client, **kwargs)

    # images -------------------------------------------------------------------------------

    def resolve(self, environment: str) -> ResolvedImage:
        """The environment's current image, referenced by id."""
        cached = self._images.get(environment)
        if cached is not None:
            return cached
        try:
            image = self._client.images.get(f"{ENV_IMAGE_REPO}/{environment}:latest")
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
        except ValueError:
            preimport = ()
        resolved = ResolvedImage(
            EnvironmentRef(name=environment, image_id=str(image.id)), preimport
        )
        self._images[environment] = resolved
        return resolved

    # runs ---------------------------------------------------------------------------------

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        """Run ``request`` in a fresh container; what the snippet does is data in the result."""
        image = self.resolve(environment)
        with self._container(image, limits) as attached:
            self._await_ready(attached, time.monotonic() + READY_TIMEOUT)
            return self._execute(attached, request, limits, pool_hit=False)

    @contextmanager
    def _container(self, image: ResolvedImage, limits: Limits) -> Iterator[_Attached]:
        container_id: str | None = None
        attached: _Attached | None = None
        try:
            container_id = self._create(image, limits)
            attached = self._attach_and_start(container_id, image)
            yield attached
        except docker.errors.DockerException as exc:
            raise SandboxError(f"docker: {exc}") from None
        finally:
            if attached is not None:
                _close_attached(attached)
            if container_id is not None:
                self._remove(container_id)

    def _create(self, image: ResolvedImage, limits: Limits) -> str:
        api = self._client.api
        tmpfs_opts = f"uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700,noexec,nosuid,nodev"
        fsize = limits.tmpfs_mib * 1024 * 1024
        host_config = api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={
                SANDBOX_WORKDIR: f"size={limits.tmpfs_mib}m,nr_inodes=4096,{tmpfs_opts}",
                "/tmp": f"size=1m,nr_inodes=256,{tmpfs_opts}",  # noqa: S108  inside the sandbox
            },
            cap_drop=["ALL"],
            security_opt=security_options(self._seccomp),
            pids_limit=limits.pids,
            mem_limit=limits.memory_mib * 1024 * 1024,
            memswap_limit=limits.memory_mib * 1024 * 1024,
            nano_cpus=int(limits.cpus * 1e9),
            ulimits=[
                docker.types.Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
            init=False,  # the harness supervisor is PID 1 and reaps every zombie itself
            log_config=docker.types.LogConfig(type="none"),
            ipc_mode="private",
            runtime=self._runtime,
        )
        command = [*HARNESS_COMMAND, "--preimport", *image.preimport]
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
            },
            host_config=host_config,
        )
        return str(created["Id"])

    def _attach_and_start(self, container_id: str, image: ResolvedImage) -> _Attached:
        api = self._client.api
        raw = api.attach_socket(
            container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        sock = getattr(raw, "_sock", raw)
        api.start(container_id)
        return _Attached(container_id, sock, raw, image, time.monotonic())

    def _await_ready(self, attached: _Attached, deadline: float) -> ReadyEvent:
        line = self._read_line(attached, deadline)
        if line is None:
            raise SandboxError(
                f"{attached.image.environment.name}: harness never became ready"
                + _tail(attached.stderr)
            )
        ready: ReadyEvent = parse_line(line, ReadyEvent)
        if ready.preimport_failed:
            raise SandboxError(f"pre-import failed in the image: {ready.preimport_failed}")
        return ready

    def _execute(
        self, attached: _Attached, request: RunRequest, limits: Limits, *, pool_hit: bool
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
        try:
            attached.sock.sendall(payload)
        except OSError as exc:
            raise SandboxError(f"cannot send the submission: {exc}") from None
        deadline = time.monotonic() + limits.wall_seconds + self._grace
        line = self._read_line(attached, deadline)
        hit_deadline = line is None and time.monotonic() >= deadline
        # Shut the attach socket before killing: a half-read stream stalls the exit otherwise.
        _close_attached(attached)
        state = self._stop(attached.container_id)
        base = {
            "environment": attached.image.environment,
            "mode": request.mode,
            "container_id": attached.container_id,
            "pool_hit": pool_hit,
        }
        if line is None:
            if state.get("OOMKilled"):
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
            reason = "report over the size cap" if attached.overflow else "no report"
            raise HarnessProtocolError(f"{reason} from the harness" + _tail(attached.stderr))
        report: FinalReport = parse_line(line, FinalReport)
        return to_observation(
            report,
            environment=attached.image.environment,
            mode=request.mode,
            requested_state=request.state,
            oom_killed=bool(state.get("OOMKilled")),
            container_id=attached.container_id,
            pool_hit=pool_hit,
        )

    # attach stream --------------------------------------------------------------------------

    def _read_line(self, attached: _Attached, deadline: float) -> bytes | None:
        """Next complete line of the supervisor's stdout, or None at EOF/deadline/overflow."""
        while True:
            newline = attached.stdout.find(b"\n")
            if newline >= 0:
                line = bytes(attached.stdout[:newline])
                del attached.stdout[: newline + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or attached.overflow:
                return None
            try:
                readable, _, _ = select.select([attached.sock], [], [], remaining)
                if not readable:
                    return None
                chunk = attached.sock.recv(65536)
            except (OSError, ValueError):
                return None
            if not chunk:
                return None
            attached.buffer += chunk
            self._demux(attached)

    def _demux(self, attached: _Attached) -> None:
        buf = attached.buffer
        while len(buf) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            data = bytes(buf[_HEADER.size : _HEADER.size + size])
            del buf[: _HEADER.size + size]
            target = attached.stdout if stream == _STDOUT else attached.stderr
            cap = self._report_max if stream == _STDOUT else 64 * 1024
            room = cap - len(target)
            if len(data) > room:
                attached.overflow = attached.overflow or stream == _STDOUT
                data = data[: max(room, 0)]
            target += data

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

    def _remove(self, container_id: str) -> None:
        with suppress(docker.errors.NotFound):
            try:
                self._client.api.remove_container(container_id, force=True)
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise SandboxError(f"cannot remove {container_id[:12]}: {exc}") from None

    def reap(self, *, owner: str | None = None) -> int:
        """Remove sandbox containers left behind (all of them, or one owner's)."""
        filters = {"label": [f"{LABEL_ROLE}={ROLE_SANDBOX}"]}
        if owner is not None:
            filters["label"].append(f"{LABEL_OWNER}={owner}")
        try:
            found = self._client.api.containers(all=True, filters=filters, quiet=True)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot list sandbox containers: {exc}") from None
        for entry in found:
            self._remove(str(entry["Id"]))
        return len(found)


def _close_attached(attached: _Attached) -> None:
    """Shut the attach connection down for good (socket, its file wrapper, the response)."""
    with suppress(OSError):
        attached.sock.shutdown(socket.SHUT_RDWR)
    for closeable in (attached.raw, getattr(attached.raw, "_response", None), attached.sock):
        if closeable is not None:
            with suppress(Exception):
                closeable.close()


def _tail(data: bytearray) -> str:
    text = bytes(data[-2000:]).decode("utf-8", "replace").strip()
    return f": {text}" if text else ""
