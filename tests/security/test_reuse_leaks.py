"""Reuse mode leaks nothing from one run to the next in the same container.

Every adversarial case of the security suite (``test_cant_escape``, ``test_cant_forge``,
``test_cant_forge_hidden_tests``) runs here again, unchanged, against a sandbox in reuse mode
(``any``). After each run the sandbox either kept the container (the run ended plainly and its
supervisor verified the restore) or removed it. A kept container then runs the probe
(``reuse_probe.py``), which must be taken by that same container and must see exactly what the
probe sees in a fresh container: files in every writable mount, processes, threads,
descriptors, environment, modules and their namespaces, cwd, umask, rlimits, signal
dispositions, SysV and POSIX IPC, Unix and inet sockets, and the memory cgroup's usage (within
16 MiB). A removed container must be gone from the engine. Isolated runs never keep one.

Two cases of the strict suite assert what reuse mode changes by design; they are replaced
below by cases asserting what happens instead. In ``same-key`` mode two API keys never share a
container, tested on the sandbox and through the API, Redis and a Celery worker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio

from grader.api.app import create_app
from grader.domain import Limits, Observation, RunMode, RunRequest, RunStatus
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.sandbox.containers import fixed_limits
from grader.settings import ReuseMode, ReuseSettings, Settings
from grader.testing import (
    OTHER_KEY,
    SUBMITTER_KEY,
    RedisServer,
    WorkerProcess,
    clear_heartbeats,
    service_settings,
)
from tests.conftest import GVISOR, OLD_ENV, Runner
from tests.security import test_cant_escape, test_cant_forge, test_cant_forge_hidden_tests
from tests.security.reuse_probe import PROBE, THIRD_PARTY
from tests.security.test_cant_escape import engine, host_file

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(GVISOR, reason="reuse mode is refused with runtime runsc (settings)"),
]

MEMORY_SLACK = 16 * 1024 * 1024
"""How far above a fresh container's the memory cgroup's usage may be (page cache)."""
REPLACED = {
    "test_kill_minus_one_finds_nobody_to_kill": "test_kill_minus_one_reaches_only_the_zygote",
    "test_files_do_not_survive_into_the_next_run": (
        "test_files_do_not_survive_in_the_same_container"
    ),
}
"""Strict-suite cases whose assertion reuse mode changes by design, and their replacements."""
NOT_ADVERSARIAL = {
    # Counts the worker's descriptors: kept containers hold their attach sockets by design.
    "test_the_worker_holds_no_more_descriptors_after_every_case",
}
_SUITES = (test_cant_escape, test_cant_forge, test_cant_forge_hidden_tests)
_LEFT_OUT = set(REPLACED) | NOT_ADVERSARIAL
_CASES = {
    name: case
    for suite in _SUITES
    for name, case in vars(suite).items()
    if name.startswith("test_") and callable(case) and name not in _LEFT_OUT
}
_DEFINED = [n for suite in _SUITES for n in vars(suite) if n.startswith("test_")]
assert len(_CASES) == len(_DEFINED) - len(_LEFT_OUT), "two suites define a case of one name"
globals().update(_CASES)  # pytest collects them here, with this module's fixtures
__all__ = ["engine", "host_file"]


def reuse_sandbox(settings: Settings, mode: ReuseMode) -> DockerSandbox:
    """A sandbox in reuse ``mode`` with no warm pool, whose containers serve runs for long."""
    reuse = ReuseSettings(mode=mode, max_runs=10_000, max_age_seconds=3600, idle_per_key=1)
    sandbox_settings = settings.sandbox.model_copy(update={"reuse": reuse})
    return DockerSandbox.from_settings(sandbox_settings, repository=settings.images.repository)


def probe_request(profile: PreimportProfile) -> RunRequest:
    source = (THIRD_PARTY if profile is PreimportProfile.FULL else "") + PROBE
    return RunRequest(mode=RunMode.SCRIPT, files={"main.py": source}, entry="main.py")


def probe_limits(limits: Limits) -> Limits:
    """The run's fixed limits (so the same container takes the probe), room for its output."""
    return limits.model_copy(
        update={
            "wall_seconds": max(limits.wall_seconds, 20.0),
            "stdout_bytes": 1024 * 1024,
            "stderr_bytes": 64 * 1024,
        }
    )


def snapshot(obs: Observation) -> tuple[dict[str, Any], int]:
    """The probe's snapshot and the memory cgroup's usage it read."""
    assert obs.status is RunStatus.COMPLETED, obs.stderr.text[-2000:]
    assert obs.exit_code == 0, obs.stderr.text[-2000:]
    first, second = obs.stdout.text.splitlines()
    return json.loads(first), int(second)


class ProbingSandbox:
    """A reuse-mode sandbox that follows every run with the probe, in the same container."""

    def __init__(self, inner: DockerSandbox, fresh: DockerSandbox) -> None:
        self.inner = inner
        self._fresh = fresh
        self._baselines: dict[tuple[object, ...], tuple[dict[str, Any], int]] = {}
        self.kept = 0
        self.removed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        obs = self.inner.run(environment, request, limits)
        self.inner.shelf.wait_settled()
        self.inner.drain_removals()
        profile = self.inner.profile_for(environment, request)
        if self._is_kept(obs):
            assert request.learner is None, "an isolated run's container was kept"
            self.kept += 1
            self._probe_same_container(environment, profile, limits, obs)
        else:
            self.removed += 1
        # Every container of this sandbox is one that waits for a run (a run's own or a
        # suite's judge): none is left over.
        self.inner.judges.wait_settled()
        waiting = self.inner.shelf.idle_count() + self.inner.judges.idle_count()
        assert self.inner.count_containers(owner=self.inner.owner) == waiting
        return obs

    def _is_kept(self, obs: Observation) -> bool:
        return obs.container_id is not None and obs.container_id in self.inner.shelf.idle_ids()

    def _probe_same_container(
        self, environment: str, profile: PreimportProfile, limits: Limits, obs: Observation
    ) -> None:
        wanted = probe_limits(limits)
        probe = self.inner.run(environment, probe_request(profile), wanted)
        assert probe.container_id == obs.container_id, "the probe ran in another container"
        seen, memory = snapshot(probe)
        expected, fresh_memory = self._baseline(environment, profile, wanted)
        assert seen == expected
        assert memory <= fresh_memory + MEMORY_SLACK, f"memory {memory} vs fresh {fresh_memory}"
        self.inner.shelf.wait_settled()

    def _baseline(
        self, environment: str, profile: PreimportProfile, limits: Limits
    ) -> tuple[dict[str, Any], int]:
        """The probe's view of a fresh reuse-mode container (its first run)."""
        key = (environment, profile, *fixed_limits(limits))
        if key not in self._baselines:
            fresh = self._fresh
            obs = fresh.run(environment, probe_request(profile), limits)
            fresh.shelf.wait_settled()
            assert obs.pool_hit is False  # a cold start: each key's first run here
            self._baselines[key] = snapshot(obs)
        return self._baselines[key]


@pytest.fixture(scope="module")
def probing(settings: Settings, built_environments: list[str]) -> Iterator[ProbingSandbox]:
    inner = reuse_sandbox(settings, ReuseMode.ANY)
    fresh = reuse_sandbox(settings, ReuseMode.ANY)
    yield ProbingSandbox(inner, fresh)
    for sandbox in (inner, fresh):
        sandbox.close()


@pytest.fixture(scope="module")
def run(probing: ProbingSandbox) -> Runner:
    """The suite's runner, on the probing reuse-mode sandbox."""
    return Runner(cast(DockerSandbox, probing))


@pytest.fixture
def guarded(run: Runner) -> Runner:
    """The strict suite's post-conditions assume a container per run; the probe replaces them."""
    return run


# replacements --------------------------------------------------------------------------------


def test_kill_minus_one_reaches_only_the_zygote(run: Runner, probing: ProbingSandbox) -> None:
    """os.kill(-1, SIGKILL) kills the zygote (PID 1 is exempt): the container is then removed."""
    before = dict(probing.inner.shelf.discarded)
    obs = run.script("import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('alive')\n")
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert obs.stdout.text == "alive\n"
    discarded = probing.inner.shelf.discarded
    assert discarded.get("restore not verified", 0) == before.get("restore not verified", 0) + 1
    assert obs.container_id not in probing.inner.shelf.idle_ids()


def test_files_do_not_survive_in_the_same_container(run: Runner) -> None:
    """Files left in /sandbox, /tmp and /dev/shm are gone when the same container runs again."""
    first = run.script(
        "import os\n"
        "for path in ('/sandbox/leftover.txt', '/tmp/leftover', '/dev/shm/leftover'):\n"
        "    with open(path, 'w') as handle:\n"
        "        handle.write('left behind')\n"
        "os.makedirs('/sandbox/deep/er')\n"
        "os.chmod('/sandbox/deep', 0)\n"
        "os.chmod('/tmp', 0o777)\n"
    )
    assert first.exit_code == 0
    code = """
import os, stat
listed = [sorted(os.listdir(folder)) for folder in ("/sandbox", "/tmp", "/dev/shm")]
modes = [oct(stat.S_IMODE(os.stat(folder).st_mode)) for folder in ("/sandbox", "/tmp", "/dev/shm")]
"""
    second = run.script(code, state=("listed", "modes"))
    assert second.container_id == first.container_id
    assert second.state["listed"].value == [["main.py"], [], []]
    assert second.state["modes"].value == ["0o700", "0o700", "0o700"]


LEFTOVERS = {
    "sysv-shm": "import ctypes\nassert ctypes.CDLL(None).shmget(0x1234, 4096, 0o1600) >= 0\n",
    "sysv-msg": "import ctypes\nassert ctypes.CDLL(None).msgget(0x1235, 0o1600) >= 0\n",
    "sysv-sem": "import ctypes\nassert ctypes.CDLL(None).semget(0x1236, 1, 0o1600) >= 0\n",
    "posix-sem": "import _multiprocessing\n_multiprocessing.SemLock(1, 1, 1, '/left', False)\n",
    "abstract-socket": """
import os, socket, time
s = socket.socket(socket.AF_UNIX)
s.bind("\\0grader-left")
s.listen()
if os.fork() == 0:
    time.sleep(60)
""",
    "tcp-listener": "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 5555))\ns.listen()\n",
    "tcp-time-wait": """
import socket
server = socket.socket()
server.bind(("127.0.0.1", 5556))
server.listen()
client = socket.create_connection(("127.0.0.1", 5556))
accepted, _ = server.accept()
client.close()
accepted.close()
""",
    "stopped-daemon": """
import os, signal
if os.fork() == 0:
    os.setsid()
    os.kill(os.getpid(), signal.SIGSTOP)
""",
    "threads": """
import threading, time
for _ in range(5):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
""",
    "umask-rlimit-cwd": """
import os, resource
os.umask(0)
resource.setrlimit(resource.RLIMIT_NOFILE, (10, 10))
os.chdir("/tmp")
os.environ["LEFT"] = "1"
""",
}
"""Snippets that leave kernel objects or process state behind, beyond the strict suite's."""


@pytest.mark.parametrize("name", list(LEFTOVERS))
def test_kernel_objects_do_not_survive_in_the_same_container(run: Runner, name: str) -> None:
    """IPC objects, sockets, stopped processes a run leaves are removed, or the container goes."""
    obs = run.script(LEFTOVERS[name])
    assert obs.status is RunStatus.COMPLETED, obs.stderr.text
    assert obs.exit_code == 0, obs.stderr.text
    # The probe already ran in the same container, if it was kept, and found nothing.


def test_posix_message_queues_are_refused_in_reuse_mode(run: Runner) -> None:
    """mq_open is refused by the reuse-mode seccomp profile: a queue would outlive its run."""
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
result = libc.mq_open(b"/grader-left", os.O_CREAT | os.O_RDWR, 0o600, None)
errno = ctypes.get_errno()
"""
    obs = run.script(code, state=("result", "errno"))
    assert obs.state["result"].value == -1
    assert obs.state["errno"].value == 1  # EPERM


# same-key mode -------------------------------------------------------------------------------


def _tenant_run(sandbox: DockerSandbox, tenant: str | None) -> Observation:
    request = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "print('hi')\n"}, entry="main.py", tenant=tenant
    )
    obs = sandbox.run(OLD_ENV, request, Limits())
    sandbox.shelf.wait_settled()
    assert obs.stdout.text == "hi\n"
    return obs


def test_same_key_mode_never_shares_a_container_between_keys(
    settings: Settings, built_environments: list[str]
) -> None:
    """In same-key mode a container serves one key's runs only; a run without a key, none."""
    sandbox = reuse_sandbox(settings, ReuseMode.SAME_KEY)
    try:
        a1 = _tenant_run(sandbox, "alice").container_id
        b1 = _tenant_run(sandbox, "bob").container_id
        a2 = _tenant_run(sandbox, "alice").container_id
        b2 = _tenant_run(sandbox, "bob").container_id
        nobody = _tenant_run(sandbox, None).container_id
        assert a1 == a2
        assert b1 == b2
        assert a1 != b1
        assert nobody not in (a1, b1)
        assert nobody not in sandbox.shelf.idle_ids()
    finally:
        sandbox.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, so no other worker takes its tasks."""
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop(graceful=False)


@pytest_asyncio.fixture
async def own_api(own_redis: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service_settings(own_redis.url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://grader"
    ) as client:
        yield client
    await app.state.grader.completions.close()
    app.state.grader.store.client.close()


async def _submit(api: httpx.AsyncClient, key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"challenge_id": "async-test-mastery/q4-counter-after-test", "code": "counter = 1\n"}
    created = await api.post("/v1/submissions", params={"wait": 30}, json=body, headers=headers)
    assert created.status_code in (200, 201, 202), created.text
    record: dict[str, Any] = created.json()
    if record["status"] != "done":
        answer = await api.get(
            f"/v1/submissions/{record['id']}", params={"wait": 30}, headers=headers
        )
        record = answer.json()
    assert record["status"] == "done", record
    return record


@pytest.mark.asyncio
async def test_same_key_mode_through_the_api_keeps_keys_apart(
    own_redis: RedisServer,
    built_environments: list[str],
    tmp_path: Path,
    own_api: httpx.AsyncClient,
) -> None:
    """Through the API and a real worker, each key's submissions share containers, never keys."""
    redis_server = own_redis
    worker = WorkerProcess(
        redis_server.url,
        tmp_path / "worker.log",
        name="reuse",
        pool_size=0,
        env={"GRADER_SANDBOX__REUSE__MODE": "same-key"},
    )
    worker.start()
    try:
        seen: dict[str, list[str]] = {"platform": [], "other": []}
        keys = {"platform": SUBMITTER_KEY, "other": OTHER_KEY}
        for key_id in ("platform", "other", "platform", "other"):
            record = await _submit(own_api, keys[key_id])
            seen[key_id].append(record["result"]["observation"]["container_id"])
    finally:
        worker.stop()
        clear_heartbeats(redis_server.url)
    assert seen["platform"][0] == seen["platform"][1], worker.tail()
    assert seen["other"][0] == seen["other"][1], worker.tail()
    assert not set(seen["platform"]) & set(seen["other"])


def test_the_whole_suite_kept_and_probed_containers(probing: ProbingSandbox) -> None:
    """The suite above is not vacuous: containers were kept and probed, and others removed."""
    if probing.kept + probing.removed < 100:
        pytest.skip("only meaningful after the whole module ran")
    print(f"leak suite: {probing.kept} runs kept and probed, {probing.removed} removed")
    assert probing.kept >= 50
    assert probing.removed >= 20
