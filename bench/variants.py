"""The variants measured on each workload.

Each variant has the same life cycle: ``start`` once, then per phase ``before_phase``
(untimed), ``submit`` from ``concurrency`` threads (timed), ``settle`` (inside the CPU window,
outside the latency and throughput clock: the warm pools refill there), ``after_phase``
(untimed, outside the CPU window), and ``close`` once, always, even on failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, ClassVar

import docker
import docker.errors

from grader.constants import LABEL_PREFIX, SANDBOX_UID
from grader.domain import Limits, Observation, RunMode, RunStatus, TestOutcome
from grader.sandbox import DockerSandbox, PreimportProfile, ReadyContainer
from grader.settings import ReuseMode, ReuseSettings, Settings

from .common import PhasePlan, Sample
from .workloads import ENVIRONMENT, Workload

BENCH_DIR = Path(__file__).resolve().parent
LAUNCHER = BENCH_DIR / "launcher.py"
EPICBOX_VENV = BENCH_DIR / ".venv-epicbox"
EPICBOX_REQUIREMENTS = ("epicbox==1.1.0", "docker<5", "urllib3<1.26", "requests<2.29")
LABEL_BENCH_RUN = f"{LABEL_PREFIX}.bench.run"
IMAGE = f"{Settings().images.repository}/{ENVIRONMENT}:latest"
"""The environment image (``GRADER_IMAGES__REPOSITORY`` chooses its repository)."""
TENANT = "bench"
"""The API key id the reuse variants' runs carry (one platform submitting)."""
LIMITS = Limits()
"""Our default limits (wall 5 s, 256 MiB, 64 pids, 1 CPU): every variant uses their like."""


def observation_ok(workload: Workload, obs: Observation) -> tuple[bool, str | None]:
    """Whether a run of ours did the workload's work correctly."""
    if obs.status is not RunStatus.COMPLETED:
        return False, f"status {obs.status.value}: {obs.error}"
    if workload.mode is RunMode.PYTEST and (
        not obs.tests or any(t.outcome is not TestOutcome.PASSED for t in obs.tests)
    ):
        return False, f"tests {[t.outcome.value for t in obs.tests]}"
    if not workload.stdout_ok(obs.stdout.text):
        return False, f"stdout {obs.stdout.text[:200]!r}"
    return True, None


def peak_from_stderr(stderr: str) -> int | None:
    """The launcher's last stderr line carries the container's peak memory (bench/launcher.py)."""
    for line in reversed(stderr.strip().splitlines()):
        if line.startswith('{"bench_peak_bytes"'):
            value = json.loads(line)["bench_peak_bytes"]
            return int(value) if value is not None else None
    return None


class Variant:
    """One way of running a submission."""

    key: ClassVar[str]
    label: ClassVar[str]
    paced: ClassVar[bool] = False
    """Has a warm pool: latency is also measured paced (the pool full at each arrival)."""

    def start(self) -> None:
        """Prepare once (untimed)."""

    def plan_for(self, plan: PhasePlan) -> PhasePlan:
        """The plan this variant can follow (the lower bound needs a fixed count)."""
        return plan

    def before_phase(self, workload: Workload, plan: PhasePlan) -> None:
        """Untimed preparation of one phase."""

    def submit(self, workload: Workload) -> Sample:
        """Run one submission and say how it went."""
        raise NotImplementedError

    def settle(self) -> None:
        """After the phase's clock stops, inside its CPU window (background work finishing)."""

    def between(self) -> None:
        """Untimed, before each submission of a paced phase: back to the idle ready state."""
        self.settle()

    def after_phase(self) -> None:
        """Untimed clean-up after the phase's CPU window."""

    def close(self) -> None:
        """Release everything this variant started (always called)."""

    def describe(self) -> dict[str, Any]:
        """How this variant is configured, for the report."""
        return {}


# ours ---------------------------------------------------------------------------------------


class _Ours(Variant):
    def __init__(self) -> None:
        self.sandbox: DockerSandbox | None = None

    def start(self) -> None:
        self.sandbox = DockerSandbox.from_env(repository=Settings().images.repository)

    def _sample(self, workload: Workload, obs: Observation, latency: float) -> Sample:
        ok, error = observation_ok(workload, obs)
        parts = {"harness_run": obs.wall_seconds} if obs.wall_seconds is not None else {}
        return Sample(latency, ok, obs.peak_memory_bytes, obs.pool_hit, error, parts)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()  # drains the pool and removes every container it owns
            self.sandbox = None


class LowerBound(_Ours):
    """The work itself: the harness in an already started, pre-imported container.

    ``prestart`` happens before the phase, or before each paced arrival (untimed); only
    ``_execute`` (send the submission, the harness writes, compiles, forks, runs, reports) is
    timed; the containers are removed after the phase, outside its CPU window.
    """

    key = "lower"
    label = "lower bound (prestarted, execute only)"
    paced = True
    prestart_threads = 2

    def __init__(self) -> None:
        super().__init__()
        self._ready: queue.SimpleQueue[ReadyContainer] = queue.SimpleQueue()
        self._used: list[ReadyContainer] = []
        self._lock = threading.Lock()
        self._profile = PreimportProfile.FULL

    def plan_for(self, plan: PhasePlan) -> PhasePlan:
        return replace(plan, max_count=plan.min_count, duration=0.0)

    def before_phase(self, workload: Workload, plan: PhasePlan) -> None:
        assert self.sandbox is not None  # noqa: S101
        # The container a warm run of this workload would get: the same pre-import profile.
        self._profile = self.sandbox.profile_for(ENVIRONMENT, workload.request)
        if plan.paced:
            return  # ``between`` starts one fresh container before each arrival
        with ThreadPoolExecutor(self.prestart_threads) as pool:
            for future in [pool.submit(self._prestart) for _ in range(plan.min_count)]:
                future.result()

    def _prestart(self) -> None:
        assert self.sandbox is not None  # noqa: S101
        self._ready.put(self.sandbox.prestart(ENVIRONMENT, LIMITS, ttl=600, profile=self._profile))

    def submit(self, workload: Workload) -> Sample:
        assert self.sandbox is not None  # noqa: S101
        ready = self._ready.get_nowait()
        with self._lock:
            self._used.append(ready)
        started = time.monotonic()
        obs = self.sandbox.execute(ready, workload.request, LIMITS, pool_hit=True)
        return replace(self._sample(workload, obs, time.monotonic() - started), pool_hit=None)

    def between(self) -> None:
        """Paced: remove the used containers, then start the next one just before it is used.

        A container that became ready shortly before runs the work faster than one that
        waited through a whole phase (Q1 p50 here: 0.070 s against 0.082 s, and the warm pool
        beat that older lower bound), so the lower bound, like the pool, uses a container
        started just before the arrival.
        """
        assert self.sandbox is not None  # noqa: S101
        with self._lock:
            finished, self._used = self._used, []
        for ready in finished:
            with contextlib.suppress(Exception):
                self.sandbox.destroy(ready)
        self._prestart()

    def after_phase(self) -> None:
        assert self.sandbox is not None  # noqa: S101
        leftovers: list[ReadyContainer] = []
        while not self._ready.empty():
            leftovers.append(self._ready.get_nowait())
        with self._lock:
            finished, self._used = [*self._used, *leftovers], []
        for ready in finished:
            with contextlib.suppress(Exception):
                self.sandbox.destroy(ready)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.after_phase()
        super().close()

    def describe(self) -> dict[str, Any]:
        return {"limits": LIMITS.model_dump(), "timed": "DockerSandbox.execute only"}


class Cold(_Ours):
    """``DockerSandbox.run`` with no pool: create, start, pre-import, run, remove, per run."""

    key = "cold"
    label = "ours: runner, cold"

    def submit(self, workload: Workload) -> Sample:
        assert self.sandbox is not None  # noqa: S101
        started = time.monotonic()
        obs = self.sandbox.run(ENVIRONMENT, workload.request, LIMITS)
        return self._sample(workload, obs, time.monotonic() - started)

    def describe(self) -> dict[str, Any]:
        return {"limits": LIMITS.model_dump(), "pool": None}


class Warm(Cold):
    """``DockerSandbox.run`` with a warm pool that refills in the background."""

    key = "warm"
    paced = True
    label = "ours: runner, warm pool"

    def __init__(self, pool_size: int, fill_timeout: float = 180.0) -> None:
        super().__init__()
        self.pool_size = pool_size
        self.fill_timeout = fill_timeout

    def start(self) -> None:
        super().start()
        assert self.sandbox is not None  # noqa: S101
        self.sandbox.start_pool([ENVIRONMENT], size=self.pool_size, limits=LIMITS)
        self._wait_full()

    def _wait_full(self) -> None:
        assert self.sandbox is not None and self.sandbox.pool is not None  # noqa: S101
        if not self.sandbox.pool.wait_until_full(self.fill_timeout):
            raise RuntimeError(f"the warm pool did not fill in {self.fill_timeout:.0f} s")

    def before_phase(self, workload: Workload, plan: PhasePlan) -> None:
        self._wait_full()

    def settle(self) -> None:
        self._wait_full()  # the refill work belongs to the phase's CPU cost

    def describe(self) -> dict[str, Any]:
        return {"limits": LIMITS.model_dump(), "pool_size": self.pool_size}


class Reuse(Warm):
    """``DockerSandbox.run`` in reuse mode ``same-key`` (one tenant), with the same warm pool.

    A used container, restored and verified by its supervisor, takes the tenant's next run;
    the pool serves only when none is waiting. ``idle_per_key`` is the pool size, so that at
    concurrency 4 every container in use can wait for the next run.
    """

    key = "reuse"
    label = "ours: runner, reuse mode same-key, warm pool"

    def start(self) -> None:
        reuse = ReuseSettings(mode=ReuseMode.SAME_KEY, idle_per_key=self.pool_size)
        self.sandbox = DockerSandbox.from_env(repository=Settings().images.repository, reuse=reuse)
        self.sandbox.start_pool([ENVIRONMENT], size=self.pool_size, limits=LIMITS)
        self._wait_full()

    def submit(self, workload: Workload) -> Sample:
        assert self.sandbox is not None  # noqa: S101
        request = workload.request.model_copy(update={"tenant": TENANT})
        started = time.monotonic()
        obs = self.sandbox.run(ENVIRONMENT, request, LIMITS)
        return self._sample(workload, obs, time.monotonic() - started)

    def settle(self) -> None:
        assert self.sandbox is not None  # noqa: S101
        self.sandbox.shelf.wait_settled()
        super().settle()

    def describe(self) -> dict[str, Any]:
        assert self.sandbox is not None  # noqa: S101
        shelf = self.sandbox.shelf
        return {
            **super().describe(),
            "reuse": shelf.settings.model_dump(mode="json"),
            "recycled": shelf.recycled,
            "discarded": dict(shelf.discarded),
        }


# baseline -----------------------------------------------------------------------------------


class Baseline(Variant):
    """Naive ``docker run --rm -i`` per submission, the snippet on stdin, no harness."""

    key = "baseline"
    label = "baseline: docker run --rm"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.launcher = LAUNCHER.read_text()

    def command(self, workload: Workload) -> list[str]:
        uid = f"{SANDBOX_UID}"
        return [
            "docker",
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "--tmpfs",
            f"/sandbox:uid={uid},gid={uid}",
            "--user",
            f"{uid}:{uid}",
            "--label",
            f"{LABEL_BENCH_RUN}={self.run_id}",
            "--entrypoint",
            "/opt/venv/bin/python",
            IMAGE,
            "-I",
            "-B",
            "-c",
            self.launcher,
            workload.mode.value,
        ]

    def submit(self, workload: Workload) -> Sample:
        started = time.monotonic()
        done = subprocess.run(
            self.command(workload),
            input=workload.code.encode(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        latency = time.monotonic() - started
        stdout = done.stdout.decode("utf-8", "replace")
        stderr = done.stderr.decode("utf-8", "replace")
        peak = peak_from_stderr(stderr)
        if done.returncode != 0:
            return Sample(latency, False, peak, error=f"exit {done.returncode}: {stderr[-300:]}")
        if not workload.stdout_ok(stdout):
            return Sample(latency, False, peak, error=f"stdout {stdout[-200:]!r}")
        return Sample(latency, True, peak)

    def close(self) -> None:
        remove_labelled(LABEL_BENCH_RUN, self.run_id)

    def describe(self) -> dict[str, Any]:
        flags = self.command_flags()
        return {"command": f"docker {' '.join(flags)} {IMAGE} -I -B -c <launcher> MODE"}

    def command_flags(self) -> list[str]:
        return [
            "run --rm -i --network none",
            f"--tmpfs /sandbox:uid={SANDBOX_UID},gid={SANDBOX_UID}",
            f"--user {SANDBOX_UID}:{SANDBOX_UID}",
            f"--label {LABEL_BENCH_RUN}=<run>",
            "--entrypoint /opt/venv/bin/python",
        ]


def remove_labelled(label: str, value: str) -> int:
    """Force-remove the containers carrying ``label=value`` (this run's, nobody else's)."""
    return _remove_matching({"label": f"{label}={value}"})


def _remove_matching(filters: dict[str, str]) -> int:
    """Force-remove every container the engine lists for ``filters``; how many it listed."""
    client = docker.from_env(timeout=60)
    try:
        found = client.api.containers(all=True, filters=filters)
        for entry in found:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_container(entry["Id"], force=True)
        return len(found)
    finally:
        client.close()


# epicbox ------------------------------------------------------------------------------------


def ensure_epicbox_venv(log: IO[str]) -> Path:
    """bench/.venv-epicbox with epicbox 1.1.0 and its old pins (created on first use)."""
    python = EPICBOX_VENV / "bin" / "python"
    probe = [str(python), "-c", "import epicbox, docker; assert docker.__version__[0] == '4'"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating {EPICBOX_VENV} (PyPI: {' '.join(EPICBOX_REQUIREMENTS)})", file=log)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(EPICBOX_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *EPICBOX_REQUIREMENTS], check=True
    )
    return python


def epicbox_image(client: docker.DockerClient) -> str:
    """Our environment image with its entry point cleared: epicbox cannot set one.

    Same layers (same file system, same image id as parent); only the config differs:
    ``ENTRYPOINT []`` so epicbox's ``/bin/sh -c COMMAND`` runs, and a label. Rebuilt when the
    environment image changes.
    """
    base = client.images.get(IMAGE)
    tag = f"grader-bench/epicbox-{ENVIRONMENT}:latest"
    with contextlib.suppress(docker.errors.ImageNotFound):
        existing = client.images.get(tag)
        if (existing.labels or {}).get(f"{LABEL_PREFIX}.bench.base") == base.id:
            return tag
    dockerfile = f"FROM {base.id}\nENTRYPOINT []\nCMD []\n"
    client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        labels={f"{LABEL_PREFIX}.role": "bench", f"{LABEL_PREFIX}.bench.base": str(base.id)},
        rm=True,
    )
    return tag


class Epicbox(Variant):
    """epicbox 1.1.0 per submission, driven in a long-lived worker from its own venv."""

    key = "epicbox"
    label = "peer: epicbox 1.1.0"

    def __init__(self, run_id: str, log: IO[str]) -> None:
        self.prefix = f"epicbox-bench-{run_id}-"
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.image: str | None = None
        self.versions: dict[str, Any] = {}
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        python = ensure_epicbox_venv(self.log)
        client = docker.from_env(timeout=120)
        try:
            self.image = epicbox_image(client)
        finally:
            client.close()
        self.process = subprocess.Popen(
            [
                str(python),
                "-u",
                str(BENCH_DIR / "epicbox_worker.py"),
                "--image",
                self.image,
                "--name-prefix",
                self.prefix,
                "--launcher",
                str(LAUNCHER),
                "--user",
                f"{SANDBOX_UID}:{SANDBOX_UID}",
                "--memory-mib",
                str(LIMITS.memory_mib),
                "--pids",
                str(LIMITS.pids),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it ourselves
        )
        assert self.process.stdout is not None  # noqa: S101
        ready = json.loads(self.process.stdout.readline() or "{}")
        if ready.get("event") != "ready":
            raise RuntimeError("the epicbox worker did not start (see the log)")
        self.versions = {k: v for k, v in ready.items() if k != "event"}
        self._reader = threading.Thread(target=self._read, name="epicbox-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None  # noqa: S101
        for line in self.process.stdout:
            event = json.loads(line)
            with self._lock:
                waiter = self._pending.pop(int(event["id"]), None)
            if waiter is not None:
                waiter[1].append(event)
                waiter[0].set()
        with self._lock:  # the worker is gone: release everyone still waiting
            for done, _ in self._pending.values():
                done.set()

    def submit(self, workload: Workload) -> Sample:
        assert self.process is not None and self.process.stdin is not None  # noqa: S101
        done = threading.Event()
        ready: list[dict[str, Any]] = []
        with self._lock:
            self._next += 1
            ident = self._next
            self._pending[ident] = (done, ready)
            request = {"op": "run", "id": ident, "mode": workload.mode.value, "code": workload.code}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        if not done.wait(180) or not ready:
            raise RuntimeError("no answer from the epicbox worker")
        result = ready[0]
        latency = float(result["latency"])
        peak = result.get("peak_bytes")
        if result.get("error"):
            return Sample(latency, False, peak, error=str(result["error"]))
        if result["exit_code"] != 0 or result.get("timeout") or result.get("oom_killed"):
            return Sample(
                latency,
                False,
                peak,
                error=f"exit {result['exit_code']}: {result.get('stderr_tail', '')[-300:]}",
            )
        if not workload.stdout_ok(result["stdout"]):
            return Sample(latency, False, peak, error=f"stdout {result['stdout'][-200:]!r}")
        return Sample(latency, True, peak)

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(OSError, ValueError):
                assert process.stdin is not None  # noqa: S101
                process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                process.stdin.close()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        remove_named(self.prefix)

    def describe(self) -> dict[str, Any]:
        return {
            **self.versions,
            "image": self.image,
            "profile": {
                "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
                "read_only": False,
                "network_disabled": True,
            },
            "limits": {
                "memory": LIMITS.memory_mib,
                "processes": LIMITS.pids,
                "cputime": 5,
                "realtime": 15,
            },
        }


def remove_named(prefix: str) -> int:
    """Force-remove containers whose name starts with ``prefix`` (one run's epicbox finished)."""
    return _remove_matching({"name": f"^/{prefix}"})
