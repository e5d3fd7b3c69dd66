"""The runner's container lifecycle on the real engine: settings, pool, cleanup, reaping."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import docker
import pytest

from grader.domain import Limits, RunMode, RunRequest, RunStatus
from grader.errors import LimitsError
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.sandbox.containers import LABEL_DEPLOYMENT, LABEL_EXPIRES
from grader.settings import Settings
from tests.conftest import NEW_ENV, OLD_ENV

pytestmark = pytest.mark.docker

TRIVIAL = RunRequest(mode=RunMode.SCRIPT, files={"main.py": "print('ok')"}, entry="main.py")
SLEEPER = RunRequest(
    mode=RunMode.SCRIPT, files={"main.py": "import time\ntime.sleep(60)"}, entry="main.py"
)


@pytest.fixture
def box(settings: Settings, built_environments: list[str]) -> Iterator[DockerSandbox]:
    """A sandbox of its own (own owner label), closed and checked empty afterwards."""
    sandbox = DockerSandbox.from_settings(settings.sandbox, repository=settings.images.repository)
    yield sandbox
    sandbox.close()
    assert sandbox.count_containers(owner=sandbox.owner) == 0


def test_container_is_created_hardened(box: DockerSandbox) -> None:
    """A sandbox container carries every hardening setting the design requires."""
    limits = Limits(memory_mib=128, pids=32, cpus=0.5, nofile=64, tmpfs_mib=8)
    ready = box.prestart(OLD_ENV, limits)
    try:
        attrs = docker.from_env().api.inspect_container(ready.stream.container_id)
    finally:
        box.destroy(ready)
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] is None
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert any(opt.startswith("seccomp=") for opt in host["SecurityOpt"])
    assert host["PidsLimit"] == 32
    assert host["Memory"] == host["MemorySwap"] == 128 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["Privileged"] is False
    assert host["LogConfig"]["Type"] == "none"
    assert host["Binds"] is None and not attrs["Mounts"]
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}
    assert ulimits == {"nofile": (64, 64), "fsize": (8 << 20, 8 << 20), "core": (0, 0)}
    assert set(host["Tmpfs"]) == {"/sandbox", "/tmp", "/dev/shm"}  # noqa: S108  inside
    for options in host["Tmpfs"].values():
        assert {"noexec", "nosuid", "nodev"} <= set(options.split(","))
        assert "nr_inodes=" in options
    assert config["User"] == "10001:10001"
    assert config["Env"] in (
        None,
        [],
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    )
    assert config["Entrypoint"] == ["/opt/venv/bin/python"]
    assert config["Cmd"][:3] == ["-I", "-m", "grader_harness"]
    assert attrs["Image"].startswith("sha256:")


def test_pool_hit_is_reported_and_faster_path_is_used(box: DockerSandbox) -> None:
    """With a warm pool the run takes a pre-started container and says so."""
    pool = box.start_pool([OLD_ENV], size=1, limits=Limits())
    assert pool.wait_until_full(60)
    obs = box.run(OLD_ENV, TRIVIAL, Limits())
    assert obs.pool_hit is True
    assert obs.stdout.text == "ok\n"
    assert pool.hits == 1


WHAT_IS_LOADED = (
    "import sys\nprint(sorted(m for m in ('fastapi', 'httpx', 'pytest') if m in sys.modules))\n"
)


def test_standard_library_scripts_get_a_bare_container(box: DockerSandbox) -> None:
    """A script importing only the standard library runs where nothing was pre-imported."""
    pool = box.start_pool([OLD_ENV], size=1, limits=Limits())
    assert pool.wait_until_full(60)
    request = RunRequest(mode=RunMode.SCRIPT, files={"main.py": WHAT_IS_LOADED}, entry="main.py")
    obs = box.run(OLD_ENV, request, Limits())
    assert (obs.status, obs.pool_hit, obs.stdout.text) == (RunStatus.COMPLETED, True, "[]\n")
    assert pool.hits == 1


def test_scripts_importing_packages_get_a_preimported_container(box: DockerSandbox) -> None:
    """A script importing an environment package runs where the packages are pre-imported."""
    pool = box.start_pool([OLD_ENV], size=1, limits=Limits())
    assert pool.wait_until_full(60)
    code = "import httpx\n" + WHAT_IS_LOADED
    request = RunRequest(mode=RunMode.SCRIPT, files={"main.py": code}, entry="main.py")
    obs = box.run(OLD_ENV, request, Limits())
    assert (obs.status, obs.pool_hit) == (RunStatus.COMPLETED, True)
    assert obs.stdout.text == "['fastapi', 'httpx', 'pytest']\n"


def test_a_bare_container_still_imports_packages_on_demand(box: DockerSandbox) -> None:
    """An import the scan cannot see (``__import__``) works in a bare container, just slower."""
    code = "m = __import__('fast' + 'api')\nprint(m.__name__)\n"
    request = RunRequest(mode=RunMode.SCRIPT, files={"main.py": code}, entry="main.py")
    assert box.profile_for(OLD_ENV, request) is PreimportProfile.BARE
    obs = box.run(OLD_ENV, request, Limits())
    assert (obs.status, obs.pool_hit, obs.stdout.text) == (RunStatus.COMPLETED, False, "fastapi\n")


def test_a_submission_over_the_harness_cap_is_refused_without_a_container(
    box: DockerSandbox,
) -> None:
    """Code the harness would refuse to read is a LimitsError before any container starts."""
    request = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "#" * (4 * 1024 * 1024)}, entry="main.py"
    )
    with pytest.raises(LimitsError, match="a run accepts at most"):
        box.run(OLD_ENV, request, Limits())
    assert box.count_containers(owner=box.owner) == 0


def test_empty_pool_falls_back_to_a_cold_start(box: DockerSandbox) -> None:
    """An environment the pool does not hold still runs, cold."""
    box.start_pool([OLD_ENV], size=1, limits=Limits())
    obs = box.run(NEW_ENV, TRIVIAL, Limits())
    assert (obs.status, obs.pool_hit, obs.stdout.text) == (RunStatus.COMPLETED, False, "ok\n")


def test_pool_size_zero_is_cold(box: DockerSandbox) -> None:
    """Size 0 disables the pool: no container waits, runs are cold."""
    box.start_pool([OLD_ENV], size=0, limits=Limits())
    assert box.count_containers(owner=box.owner) == 0
    assert box.run(OLD_ENV, TRIVIAL, Limits()).pool_hit is False


def test_other_container_limits_skip_the_pool(box: DockerSandbox) -> None:
    """A run needing different container-level limits does not get a pooled container."""
    pool = box.start_pool([OLD_ENV], size=1, limits=Limits())
    assert pool.wait_until_full(60)
    obs = box.run(OLD_ENV, TRIVIAL, Limits(memory_mib=128))
    assert obs.pool_hit is False


def test_pool_is_drained_on_close(settings: Settings, built_environments: list[str]) -> None:
    """Closing the sandbox removes every pre-started container."""
    sandbox = DockerSandbox.from_settings(settings.sandbox, repository=settings.images.repository)
    pool = sandbox.start_pool([OLD_ENV, NEW_ENV], size=2, limits=Limits())
    assert pool.wait_until_full(120)
    # 2 environments x (2 full, 2 bare, 2 serve, 1 judge: judges are reused by default)
    assert sandbox.count_containers(owner=sandbox.owner) == 14
    sandbox.close()
    assert sandbox.count_containers(owner=sandbox.owner) == 0


def test_a_reaper_never_touches_another_deployment_s_containers(
    settings: Settings, box: DockerSandbox
) -> None:
    """Expired sandboxes of another deployment on the same engine are left to their owner."""
    other = DockerSandbox.from_settings(
        settings.sandbox.model_copy(update={"deployment": "someone-else"}),
        repository=settings.images.repository,
    )
    theirs = other.prestart(OLD_ENV, Limits(), ttl=1, profile=PreimportProfile.BARE)
    try:
        time.sleep(1.5)
        # Only this deployment's expired containers go: judges that this test session's own
        # sandbox kept past their expiry may be among them, never another deployment's.
        box.reap(expired_only=True)
        assert box.count_containers(owner=box.owner) == 0
        assert other.count_containers(owner=other.owner) == 1
        labels = docker.from_env().api.inspect_container(theirs.container_id)["Config"]["Labels"]
        assert labels[LABEL_DEPLOYMENT] == "someone-else"
    finally:
        other.destroy(theirs)
    assert other.count_containers(owner=other.owner) == 0


def test_reaper_removes_expired_containers_only(box: DockerSandbox) -> None:
    """Containers past their expiry label are reaped; live ones are left alone."""
    # Expiring shortly after it is ready, not before: every worker's reaper (the session's
    # Celery worker runs one) removes expired containers of any owner, even while starting.
    # Its expiry is read at once, and far enough ahead that a slow start of the second one
    # on a loaded engine does not let a reaper take it first.
    expired = box.prestart(OLD_ENV, Limits(), ttl=8, profile=PreimportProfile.BARE)
    labels = docker.from_env().api.inspect_container(expired.stream.container_id)
    expires = int(labels["Config"]["Labels"][LABEL_EXPIRES])
    live = box.prestart(OLD_ENV, Limits(), profile=PreimportProfile.BARE)
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    assert box.reap(owner=box.owner, expired_only=True) == 1
    ids = {c.id for c in docker.from_env().containers.list(all=True)}
    assert expired.stream.container_id not in ids
    assert live.stream.container_id in ids
    expired.stream.close()
    box.destroy(live)


class Cancelled(Exception):
    """Raised from a signal handler to interrupt a run mid-flight."""


def test_cancelled_run_removes_its_container(box: DockerSandbox) -> None:
    """An exception interrupting run() (a task cancel, say) still removes the container."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Cancelled

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 2.5)
    try:
        with pytest.raises(Cancelled):
            box.run(OLD_ENV, SLEEPER, Limits(wall_seconds=20))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert box.count_containers(owner=box.owner) == 0


def _open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def _processes_in(container_ids: set[str]) -> list[int]:
    """Host pids whose cgroup belongs to one of the given containers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        if any(cid in cgroup for cid in container_ids):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_200_sequential_runs_leave_nothing_behind(built_environments: list[str]) -> None:
    """200 runs (pool hits and cold starts mixed) leave no containers, fds or processes.

    Pre-import is off here to keep the run short: this checks the runner's cleanup, and the
    containers are created, attached, fed, read and removed exactly as in production.
    """
    sandbox = DockerSandbox.from_env(preimport=False)
    pool = sandbox.start_pool([OLD_ENV], size=2, limits=Limits())
    assert pool.wait_until_full(60)
    for _ in range(20):  # warm up: docker-py's keep-alive pool grows to its bound first
        sandbox.run(OLD_ENV, TRIVIAL, Limits())
    sandbox.drain_removals()
    fds = [_open_fds()]
    outcomes = []
    containers: set[str] = set()
    for number in range(200):
        if number % 50 == 49:
            sandbox.drain_removals()
            fds.append(_open_fds())
        request = RunRequest(
            mode=RunMode.SCRIPT, files={"main.py": f"print({number})"}, entry="main.py"
        )
        obs = sandbox.run(OLD_ENV, request, Limits())
        outcomes.append((obs.status, obs.stdout.text == f"{number}\n", obs.pool_hit))
        assert obs.container_id is not None
        containers.add(obs.container_id)
    assert all(status is RunStatus.COMPLETED and ok for status, ok, _ in outcomes)
    assert any(hit for *_, hit in outcomes)
    sandbox.drain_removals()
    fds.append(_open_fds())
    sandbox.close()
    assert sandbox.count_containers(owner=sandbox.owner) == 0
    # The pool thread may hold one attach socket at a sample, so allow that much jitter.
    assert max(fds) - fds[0] <= 2, fds
    assert len(containers) == 200
    assert _processes_in(containers) == []
