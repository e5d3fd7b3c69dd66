"""A snippet cannot escape or outlast its sandbox: limits, network, privileges, host files, PID 1.

Every case runs a hostile snippet through the real sandbox and asserts the exact safe outcome;
``post_conditions`` then checks what every run must leave behind: its container is gone, the sandbox
still runs the next job, and the verdict came within the wall limit plus 2 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from grader.constants import SANDBOX_UID
from grader.domain import (
    ChildReportStatus,
    Limits,
    Observation,
    RunMode,
    RunRequest,
    RunStatus,
    StateStatus,
)
from tests.conftest import GVISOR, NEW_ENV, OLD_ENV, Runner

pytestmark = pytest.mark.docker

VERDICT_GRACE = 2.0
"""Seconds past the wall limit within which every verdict must arrive."""
COLD_START_SLACK = 1.0
"""Jitter of container start-up on top of the measured baseline."""

TIME_LIMIT = Limits(wall_seconds=2)
MEMORY_LIMIT = Limits(memory_mib=64)
OUTPUT_LIMIT = Limits(stdout_bytes=10_000, stderr_bytes=10_000)
NO_CAPS = "0000000000000000"
PLANTED = "s3cret"
"""The value of a variable planted in the worker's environment."""


def _open_fds(run: Runner, engine: docker.DockerClient) -> int:
    """The worker's open descriptors, once idle keep-alive connections are let go.

    docker-py keeps a connection pool per request URL (so per container), up to a fixed number
    of pools: a bounded cache, not a leak. Closing both clients drops those idle connections
    (the clients stay usable) so that what is counted is what the worker really holds.
    """
    run.sandbox.containers.close_idle_connections()
    engine.close()
    return len(list(Path("/proc/self/fd").iterdir()))


def post_conditions(
    run: Runner, engine: docker.DockerClient, baseline: float
) -> Callable[[Observation | None, float, Limits], None]:
    """What every hostile run must leave behind, checked on the way out of each run."""

    def check(obs: Observation | None, elapsed: float, limits: Limits) -> None:
        sandbox = run.sandbox
        # The run's container is gone, and no container of this session's owner is left over
        # (the session's sandbox has no warm pool; only judges of hidden-test suites graded
        # earlier in the session wait for their suite's next run).
        existing = {c.id for c in engine.containers.list(all=True, sparse=True)}
        if obs is not None:
            assert obs.container_id is not None
            assert obs.container_id not in existing
        assert sandbox.pool is None
        assert sandbox.judges.wait_settled()
        assert sandbox.count_containers(owner=sandbox.owner) == sandbox.judges.idle_count()
        # The verdict arrived within the wall limit + 2 s (over what a trivial run costs here).
        budget = baseline + limits.wall_seconds + VERDICT_GRACE + COLD_START_SLACK
        assert elapsed <= budget, f"verdict after {elapsed:.2f}s, budget {budget:.2f}s"
        # The sandbox still runs the next job (with the plain runner: no recursion).
        following = run.script("print('next')")
        assert following.status is RunStatus.COMPLETED
        assert following.stdout.text == "next\n"
        assert sandbox.count_containers(owner=sandbox.owner) == sandbox.judges.idle_count()

    return check


@dataclass(frozen=True)
class HostFile:
    """A file on the worker's host that snippets aim at; it must stay exactly as it was."""

    path: Path
    content: bytes
    mtime_ns: int

    def assert_unchanged(self) -> None:
        assert self.path.read_bytes() == self.content
        assert self.path.stat().st_mtime_ns == self.mtime_ns
        assert [p.name for p in self.path.parent.iterdir()] == [self.path.name]


@pytest.fixture(scope="session")
def baseline(run: Runner) -> float:
    """Seconds a trivial run takes end to end on this host, measured once per session.

    The slower of a trivial script (a bare container) and a trivial pytest run (a container
    that pre-imports the environment's packages first), so that the verdict budget of a
    pytest-mode run counts its heavier start too.
    """
    slowest = 0.0
    for mode in ("script", "pytest"):
        started = time.monotonic()
        if mode == "script":
            obs = run.script("pass")
        else:
            obs = run.pytest("def test_nothing():\n    pass\n")
        slowest = max(slowest, time.monotonic() - started)
        assert obs.status is RunStatus.COMPLETED
    return slowest


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    """A client of our own, to see every container on the engine."""
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module", autouse=True)
def worker_fds(baseline: float, engine: docker.DockerClient, run: Runner) -> int:
    """The worker's open descriptors before the first case."""
    engine.containers.list(all=True, sparse=True)
    run.sandbox.count_containers(owner=run.sandbox.owner)
    return _open_fds(run, engine)


@pytest.fixture
def guarded(run: Runner, engine: docker.DockerClient, baseline: float) -> Runner:
    """The session's runner, with every run's post-conditions checked."""
    return run.checked(post_conditions(run, engine, baseline))


@pytest.fixture
def host_file(tmp_path: Path) -> HostFile:
    """A sentinel file on the host, alone in its folder."""
    path = tmp_path / "sentinel.txt"
    path.write_bytes(b"host data, not for snippets\n")
    return HostFile(path, path.read_bytes(), path.stat().st_mtime_ns)


def _assert_sandbox_killed_for_memory(obs: Observation) -> None:
    """gVisor: the host's memory cgroup kills the whole sandbox, supervisor included, so no
    report comes; the engine's OOMKilled flag makes it a memory limit (never ours, never a pass).
    """
    assert obs.error == "the sandbox was killed for memory"
    assert (obs.signal, obs.exit_code) == (None, None)
    assert obs.child_report is ChildReportStatus.MISSING
    assert (obs.exception, obs.state, obs.tests) == (None, {}, ())


def _assert_killed_without_report(obs: Observation) -> None:
    assert obs.signal == 9
    assert obs.exit_code is None
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.exception is None
    assert obs.state == {}
    assert obs.tests == ()


# time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        pytest.param("script", "while True:\n    pass\n", id="busy-loop"),
        pytest.param("script", "import time\ntime.sleep(10**6)\n", id="sleep-forever"),
        pytest.param(
            "pytest",
            "import time\n\ndef test_sleeps():\n    time.sleep(10**6)\n",
            id="sleep-in-a-test",
        ),
        pytest.param(
            "script",
            "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n",
            id="stops-itself",
        ),
    ],
)
def test_a_run_that_never_ends_is_a_time_limit(guarded: Runner, mode: str, code: str) -> None:
    """A snippet that never finishes is killed at the wall limit: time_limit_exceeded."""
    if mode == "pytest":
        obs = guarded.pytest(code, limits=TIME_LIMIT)
    else:
        obs = guarded.script(code, state=("x",), limits=TIME_LIMIT)
    assert obs.status is RunStatus.TIME_LIMIT_EXCEEDED
    assert obs.timed_out is True
    _assert_killed_without_report(obs)


# processes ----------------------------------------------------------------------------------

LINEAR_FORKS = """
import os, time
errors = []
forked = 0
while not errors:
    try:
        pid = os.fork()
    except OSError as exc:
        errors.append(type(exc).__name__)
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    forked += 1
"""

EXPONENTIAL_FORKS = """
import os
main = os.getpid()
errors = []
forked = 0
while not errors:
    try:
        pid = os.fork()
    except OSError as exc:
        if os.getpid() != main:
            os._exit(0)
        errors.append(type(exc).__name__)
        continue
    if pid:
        forked += 1
"""


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(LINEAR_FORKS, id="children-sleep"),
        pytest.param(EXPONENTIAL_FORKS, id="children-fork-too"),
    ],
)
def test_a_fork_bomb_runs_into_the_pids_limit(guarded: Runner, code: str) -> None:
    """A fork bomb hits the pids limit: fork raises BlockingIOError and the run ends."""
    obs = guarded.script(code, state=("errors", "forked"), limits=Limits(pids=32))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert obs.state["errors"].value == ["BlockingIOError"]
    assert obs.state["forked"].value > 0


def test_a_naive_fork_bomb_ends_at_the_pids_limit(guarded: Runner) -> None:
    """`while True: os.fork()` ends at the pids limit; only the child we forked reports.

    Its clones raise too and unwind into the harness's code, which reports only from the
    process the supervisor forked (before, whether a clone's report got in first was a race).
    """
    obs = guarded.script("import os\nwhile True:\n    os.fork()\n", limits=Limits(pids=32))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 1
    assert obs.child_report is ChildReportStatus.OK
    assert obs.exception is not None
    assert (obs.exception.type, obs.exception.message) == (
        "BlockingIOError",
        "[Errno 11] Resource temporarily unavailable",
    )
    assert obs.state == {}
    assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in obs.stderr.text


def test_a_thread_bomb_runs_into_the_pids_limit(guarded: Runner) -> None:
    """Starting threads forever fails with "can't start new thread" below the pids limit."""
    code = """
import threading, time
started = 0
error = None
try:
    while True:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        started += 1
except RuntimeError as exc:
    error = str(exc)
"""
    limits = Limits(pids=32)
    obs = guarded.script(code, state=("started", "error"), limits=limits)
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert obs.state["error"].value == "can't start new thread"
    assert 0 < obs.state["started"].value < limits.pids


# memory -------------------------------------------------------------------------------------

MEMORY_BOMB = "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n"


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        pytest.param("script", MEMORY_BOMB, id="script"),
        pytest.param(
            "pytest",
            "def test_hogs():\n    chunks = []\n    while True:\n"
            "        chunks.append(bytearray(1 << 20))\n",
            id="in-a-test",
        ),
    ],
)
def test_a_memory_bomb_is_a_memory_limit(guarded: Runner, mode: str, code: str) -> None:
    """A memory bomb is OOM-killed and reported as memory_limit_exceeded, never as time."""
    if mode == "pytest":
        obs = guarded.pytest(code, limits=MEMORY_LIMIT)
    else:
        obs = guarded.script(code, limits=MEMORY_LIMIT)
    assert obs.status is RunStatus.MEMORY_LIMIT_EXCEEDED
    assert obs.oom_killed is True
    assert obs.timed_out is False
    if GVISOR:
        _assert_sandbox_killed_for_memory(obs)
    else:
        _assert_killed_without_report(obs)


def test_a_memory_bomb_in_a_grandchild_is_a_memory_limit(guarded: Runner) -> None:
    """Memory exhausted by a forked process still makes the run memory_limit_exceeded."""
    code = """
import os
pid = os.fork()
if pid == 0:
    chunks = []
    while True:
        chunks.append(bytearray(1 << 20))
_, status = os.waitpid(pid, 0)
killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
"""
    obs = guarded.script(code, state=("killed_by",), limits=MEMORY_LIMIT)
    assert obs.status is RunStatus.MEMORY_LIMIT_EXCEEDED
    assert obs.oom_killed is True
    if GVISOR:
        _assert_sandbox_killed_for_memory(obs)
        return
    assert obs.exit_code == 0
    assert obs.state["killed_by"].value == 9


# disk and descriptors -----------------------------------------------------------------------

FILL_ONE_FILE = """
import errno, os
written = 0
error = None
fd = os.open(PATH, os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:
        written += os.write(fd, b"x" * 65536)
except OSError as exc:
    error = errno.errorcode[exc.errno]
"""


@pytest.mark.parametrize(
    ("path", "error", "cap_mib"),
    [
        pytest.param("/sandbox/fill", "ENOSPC", 4, id="sandbox-tmpfs"),
        pytest.param("/tmp/fill", "ENOSPC", 1, id="tmp-tmpfs"),  # noqa: S108  inside the sandbox
        pytest.param("/dev/shm/fill", "ENOSPC", 1, id="dev-shm-tmpfs"),  # noqa: S108
    ],
)
def test_filling_a_writable_filesystem_stops_at_its_cap(
    guarded: Runner, path: str, error: str, cap_mib: int
) -> None:
    """Writing one file forever ends in ENOSPC (tmpfs size) or EFBIG (file size limit)."""
    obs = guarded.script(
        f"PATH = {path!r}\n" + FILL_ONE_FILE,
        state=("written", "error"),
        limits=Limits(tmpfs_mib=4),
    )
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert obs.state["error"].value == error
    assert 0 < obs.state["written"].value <= cap_mib * 1024 * 1024


@pytest.mark.parametrize(
    ("folder", "inodes"),
    [
        pytest.param("/sandbox", 4096, id="sandbox"),
        pytest.param("/tmp", 256, id="tmp"),  # noqa: S108  inside the sandbox
        pytest.param("/dev/shm", 64, id="dev-shm"),  # noqa: S108  inside the sandbox
    ],
)
def test_creating_files_forever_runs_out_of_inodes(
    guarded: Runner, folder: str, inodes: int
) -> None:
    """Creating empty files in any writable tmpfs ends in ENOSPC at its inode cap."""
    code = f"""
import errno
created = 0
error = None
try:
    while True:
        open(f"{folder}/f{{created}}", "x").close()
        created += 1
except OSError as exc:
    error = errno.errorcode[exc.errno]
"""
    obs = guarded.script(code, state=("created", "error"))
    if GVISOR:
        # gVisor's tmpfs ignores nr_inodes: files are created (their memory counted against
        # the memory limit) until the wall limit ends the run, a time limit, never a pass.
        assert obs.status is RunStatus.TIME_LIMIT_EXCEEDED
        assert obs.timed_out is True
        assert obs.child_report is ChildReportStatus.MISSING
        assert obs.state == {}
        return
    assert obs.status is RunStatus.COMPLETED
    assert obs.state["error"].value == "ENOSPC"
    assert 0 < obs.state["created"].value < inodes


def test_opening_files_forever_runs_into_the_nofile_limit(guarded: Runner) -> None:
    """Opening descriptors forever fails with EMFILE below the nofile limit."""
    code = """
import errno
handles = []
error = None
try:
    while True:
        handles.append(open("/dev/null", "rb"))
except OSError as exc:
    error = errno.errorcode[exc.errno]
opened = len(handles)
"""
    limits = Limits(nofile=64)
    obs = guarded.script(code, state=("opened", "error"), limits=limits)
    assert obs.status is RunStatus.COMPLETED
    assert obs.state["error"].value == "EMFILE"
    assert 0 < obs.state["opened"].value < limits.nofile


# output -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code", "stream", "unit"),
    [
        pytest.param(
            "script", 'while True:\n    print("A" * 99)\n', "stdout", "A" * 99 + "\n", id="stdout"
        ),
        pytest.param(
            "script",
            'import sys\nwhile True:\n    sys.stderr.write("E" * 99 + "\\n")\n',
            "stderr",
            "E" * 99 + "\n",
            id="stderr",
        ),
        pytest.param(
            "script",
            'import sys\nsys.stdout.write("Z" * 10_000_000)\n',
            "stdout",
            "Z",
            id="one-huge-line",
        ),
        pytest.param(
            "pytest",
            'def test_floods():\n    while True:\n        print("A" * 99)\n',
            "stdout",
            "A" * 99 + "\n",
            id="in-a-test",
        ),
    ],
)
def test_an_output_flood_is_cut_at_the_cap(
    guarded: Runner, mode: str, code: str, stream: str, unit: str
) -> None:
    """An output flood is output_limit_exceeded, with exactly the cap's bytes kept."""
    if mode == "pytest":
        obs = guarded.pytest(code, limits=OUTPUT_LIMIT)
    else:
        obs = guarded.script(code, limits=OUTPUT_LIMIT)
    cap = OUTPUT_LIMIT.stdout_bytes if stream == "stdout" else OUTPUT_LIMIT.stderr_bytes
    flooded = obs.stdout if stream == "stdout" else obs.stderr
    quiet = obs.stderr if stream == "stdout" else obs.stdout
    assert obs.status is RunStatus.OUTPUT_LIMIT_EXCEEDED
    assert obs.output_limit_exceeded is True
    assert flooded.truncated is True
    assert flooded.bytes > cap
    assert len(flooded.text.encode()) == cap
    assert flooded.text == (unit * (cap // len(unit) + 1))[:cap]
    assert (quiet.text, quiet.bytes, quiet.truncated) == ("", 0, False)
    _assert_killed_without_report(obs)


@pytest.mark.parametrize(
    ("size", "status"),
    [
        pytest.param(10_000, RunStatus.COMPLETED, id="at-the-cap"),
        pytest.param(10_001, RunStatus.OUTPUT_LIMIT_EXCEEDED, id="one-over"),
    ],
)
def test_a_line_without_newline_at_the_cap(guarded: Runner, size: int, status: RunStatus) -> None:
    """One line with no newline is kept whole at the cap and cut one byte past it."""
    obs = guarded.script(f'import sys\nsys.stdout.write("y" * {size})\n', limits=OUTPUT_LIMIT)
    assert obs.status is status
    assert obs.stdout.text == "y" * 10_000
    assert obs.stdout.bytes == size
    assert obs.stdout.truncated is (size > 10_000)


@pytest.mark.parametrize(
    ("fd", "raw", "text"),
    [
        pytest.param(1, b"a\x00b\x00\x00c\n", "a\x00b\x00\x00c\n", id="nul-bytes"),
        pytest.param(
            1, b"\xff\xfe bad \xc3\x28 end\n", "\ufffd\ufffd bad \ufffd( end\n", id="invalid-utf8"
        ),
        pytest.param(
            2,
            b"\x1b[31mred\x1b[0m \x1b]0;title\x07\x1b[2J\x1b[1A\r\n",
            "\x1b[31mred\x1b[0m \x1b]0;title\x07\x1b[2J\x1b[1A\r\n",
            id="ansi-escapes",
        ),
    ],
)
def test_output_bytes_come_back_as_data(guarded: Runner, fd: int, raw: bytes, text: str) -> None:
    """NUL bytes and ANSI escapes are kept exactly; invalid UTF-8 becomes U+FFFD, no crash."""
    obs = guarded.script(f"import os\nos.write({fd}, {raw!r})\n")
    written, other = (obs.stdout, obs.stderr) if fd == 1 else (obs.stderr, obs.stdout)
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert written.text == text
    assert written.bytes == len(raw)
    assert written.truncated is False
    assert other.text == ""


# network ------------------------------------------------------------------------------------

CONNECT = """
import errno, socket
try:
    socket.create_connection((HOST, PORT), timeout=1).close()
    outcome = "connected"
except OSError as exc:
    outcome = [type(exc).__name__, errno.errorcode.get(exc.errno or 0, exc.errno)]
"""


@pytest.mark.parametrize(
    ("host", "port", "outcome"),
    [
        pytest.param("1.1.1.1", 80, ["OSError", "ENETUNREACH"], id="internet-ipv4"),
        pytest.param("2606:4700:4700::1111", 80, ["OSError", "ENETUNREACH"], id="internet-ipv6"),
        # The container's own loopback: nothing listens there, the host's Redis is not it.
        pytest.param(
            "127.0.0.1", 6379, ["ConnectionRefusedError", "ECONNREFUSED"], id="redis-loopback"
        ),
        pytest.param("172.17.0.1", 6379, ["OSError", "ENETUNREACH"], id="redis-bridge-gateway"),
    ],
)
def test_no_tcp_connection_leaves_the_sandbox(
    guarded: Runner, host: str, port: int, outcome: list[str]
) -> None:
    """TCP connects to the internet, the host's Redis or the bridge gateway all fail."""
    obs = guarded.script(f"HOST, PORT = {host!r}, {port}\n" + CONNECT, state=("outcome",))
    assert obs.status is RunStatus.COMPLETED
    if GVISOR and outcome == ["OSError", "ENETUNREACH"]:
        outcome = ["OSError", "EHOSTUNREACH"]  # gVisor's stack, with no route either way
    assert obs.state["outcome"].value == outcome


def test_dns_lookups_fail(guarded: Runner) -> None:
    """socket.getaddrinfo fails with a gaierror (EAI_AGAIN): there is no resolver to reach."""
    code = """
import socket
try:
    socket.getaddrinfo("example.com", 443)
    outcome = "resolved"
except OSError as exc:
    outcome = [type(exc).__name__, exc.errno]
"""
    obs = guarded.script(code, state=("outcome",))
    assert obs.state["outcome"].value == ["gaierror", -3]  # EAI_AGAIN


def test_the_docker_socket_is_not_there(guarded: Runner) -> None:
    """/var/run/docker.sock (and /run/docker.sock) do not exist inside the sandbox."""
    code = """
import errno, os, socket
present = [os.path.exists(p) for p in ("/var/run/docker.sock", "/run/docker.sock")]
client = socket.socket(socket.AF_UNIX)
try:
    client.connect("/var/run/docker.sock")
    outcome = "connected"
except OSError as exc:
    outcome = [type(exc).__name__, errno.errorcode[exc.errno]]
"""
    obs = guarded.script(code, state=("present", "outcome"))
    assert obs.state["present"].value == [False, False]
    assert obs.state["outcome"].value == ["FileNotFoundError", "ENOENT"]


# identity and privileges --------------------------------------------------------------------


def test_the_workers_environment_does_not_reach_the_snippet(
    guarded: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret in the worker's environment is neither in os.environ nor in /proc/1/environ."""
    monkeypatch.setenv("GRADER_TEST_SECRET", PLANTED)
    code = """
import os
environment = dict(os.environ)
try:
    with open("/proc/1/environ", "rb") as handle:
        pid1_environ = handle.read().decode(errors="replace")
except OSError as exc:
    pid1_environ = type(exc).__name__
"""
    obs = guarded.script(code, state=("environment", "pid1_environ"))
    assert os.environ["GRADER_TEST_SECRET"] == PLANTED
    assert obs.state["environment"].value == {
        "HOME": "/sandbox",
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    if GVISOR:  # gVisor lets the same uid read PID 1's environ: the engine's three only
        assert sorted(obs.state["pid1_environ"].value.split("\0")) == [
            "",
            "HOME=/sandbox",
            "HOSTNAME=sandbox",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    else:
        assert obs.state["pid1_environ"].value == "PermissionError"
    assert PLANTED not in obs.stdout.text + obs.stderr.text + obs.state["pid1_environ"].value


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_the_snippet_runs_unprivileged(guarded: Runner, env: str) -> None:
    """The snippet is uid 10001 with no capabilities, no_new_privs and a seccomp filter."""
    code = """
status = {}
with open("/proc/self/status") as handle:
    for line in handle:
        key, _, value = line.partition(":")
        status[key] = value.split()
keys = ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
posture = {key: status.get(key) for key in keys}
import ctypes
no_new_privs = ctypes.CDLL(None).prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
"""
    obs = guarded.script(code, env=env, state=("posture", "no_new_privs"))
    uid = str(SANDBOX_UID)
    # gVisor's /proc/self/status has no CapAmb or NoNewPrivs lines; prctl answers for both.
    assert obs.state["posture"].value == {
        "Uid": [uid] * 4,
        "Gid": [uid] * 4,
        "CapInh": [NO_CAPS],
        "CapPrm": [NO_CAPS],
        "CapEff": [NO_CAPS],
        "CapBnd": [NO_CAPS],
        "CapAmb": None if GVISOR else [NO_CAPS],
        "NoNewPrivs": None if GVISOR else ["1"],
        "Seccomp": ["2"],
    }
    assert obs.state["no_new_privs"].value == 1


def test_becoming_root_is_refused(guarded: Runner) -> None:
    """os.setuid(0) and its relatives raise PermissionError (EPERM); the uid stays 10001."""
    code = """
import errno, os
attempts = {}
for name, call in (
    ("setuid", lambda: os.setuid(0)),
    ("seteuid", lambda: os.seteuid(0)),
    ("setresuid", lambda: os.setresuid(0, 0, 0)),
    ("setgid", lambda: os.setgid(0)),
    ("setgroups", lambda: os.setgroups([0])),
):
    try:
        call()
        attempts[name] = "succeeded"
    except OSError as exc:
        attempts[name] = [type(exc).__name__, errno.errorcode[exc.errno]]
uids = list(os.getresuid())
"""
    obs = guarded.script(code, state=("attempts", "uids"))
    refused = ["PermissionError", "EPERM"]
    assert obs.state["attempts"].value == {
        "setuid": refused,
        "seteuid": refused,
        "setresuid": refused,
        "setgid": refused,
        "setgroups": refused,
    }
    assert obs.state["uids"].value == [SANDBOX_UID] * 3


WRITE = """
import errno

def attempt(path):
    try:
        with open(path, "a") as handle:
            handle.write("planted\\n")
    except OSError as exc:
        return [type(exc).__name__, errno.errorcode[exc.errno]]
    return "written"

outcome = attempt(TARGET)
host = attempt(HOST)
"""


@pytest.mark.parametrize(
    ("target", "outcome"),
    [
        pytest.param("/evil", ["OSError", "EROFS"], id="root-dir"),
        pytest.param(
            "/opt/venv/lib/python3.11/site-packages/evil.pth", ["OSError", "EROFS"], id="venv-pth"
        ),
        pytest.param("/etc/passwd", ["PermissionError", "EACCES"], id="etc-passwd"),
        pytest.param("/etc/hosts", ["PermissionError", "EACCES"], id="etc-hosts"),
        pytest.param(
            "/opt/venv/lib/python3.11/site-packages/grader_harness/supervisor.py",
            ["PermissionError", "EACCES"],
            id="harness-source",
        ),
    ],
)
def test_read_only_paths_cannot_be_written(
    guarded: Runner, host_file: HostFile, target: str, outcome: list[str]
) -> None:
    """Writes outside the tmpfs mounts fail (EROFS or EACCES); a host path is not even there."""
    obs = guarded.script(
        f"TARGET, HOST = {target!r}, {str(host_file.path)!r}\n" + WRITE,
        state=("outcome", "host"),
    )
    assert obs.status is RunStatus.COMPLETED
    if GVISOR and outcome == ["OSError", "EROFS"]:
        # gVisor checks the directory's permissions (root's, 0755) before the read-only mount.
        outcome = ["PermissionError", "EACCES"]
    assert obs.state["outcome"].value == outcome
    assert obs.state["host"].value == ["FileNotFoundError", "ENOENT"]
    host_file.assert_unchanged()


PLANT_SYMLINKS = """
import errno, os

def attempt(path, mode):
    try:
        with open(path, mode) as handle:
            if "r" in mode:
                handle.read()
            else:
                handle.write(b"planted\\n")
    except OSError as exc:
        return [type(exc).__name__, errno.errorcode[exc.errno]]
    return "ok"

os.symlink(TARGET, "/sandbox/link")
os.symlink(TARGET, "/tmp/link")
os.symlink(TARGET, "/sandbox/main.py.new")
os.replace("/sandbox/main.py.new", "/sandbox/main.py")
outcomes = {
    "direct": attempt(TARGET, "rb"),
    "read": attempt("/sandbox/link", "rb"),
    "write": attempt("/sandbox/link", "ab"),
    "tmp": attempt("/tmp/link", "ab"),
}
"""


_EACCES = ["PermissionError", "EACCES"]
_EBADF = ["OSError", "EBADF"]
GVISOR_PLANTED: dict[str, dict[str, object]] = {
    # gVisor opens PID 1's environ (empty by design) and stdout (read: EBADF, a write end;
    # a write lacks the report key and is ignored) to the same uid.
    "/proc/1/environ": {"direct": "ok", "read": "ok", "write": _EACCES, "tmp": _EACCES},
    "/proc/1/fd/1": {"direct": _EBADF, "read": _EBADF, "write": "ok", "tmp": "ok"},
}


@pytest.mark.parametrize(
    ("target", "outcome"),
    [
        pytest.param("/etc/shadow", ["PermissionError", "EACCES"], id="etc-shadow"),
        pytest.param("/proc/1/environ", ["PermissionError", "EACCES"], id="pid1-environ"),
        pytest.param("/proc/1/fd/1", ["PermissionError", "EACCES"], id="pid1-stdout"),
        pytest.param(None, ["FileNotFoundError", "ENOENT"], id="host-file"),
    ],
)
def test_planted_symlinks_lead_nowhere(
    guarded: Runner, host_file: HostFile, target: str | None, outcome: list[str]
) -> None:
    """Symlinks planted in /sandbox and /tmp (even as main.py) are never followed to anything."""
    aimed_at = target or str(host_file.path)
    obs = guarded.script(f"TARGET = {aimed_at!r}\n" + PLANT_SYMLINKS, state=("outcomes",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    expected: dict[str, object] = {
        "direct": outcome,
        "read": outcome,
        "write": outcome,
        "tmp": outcome,
    }
    if GVISOR and target in GVISOR_PLANTED:
        expected = GVISOR_PLANTED[target]
    assert obs.state["outcomes"].value == expected
    assert obs.stdout.text == obs.stderr.text == ""
    host_file.assert_unchanged()


# PID 1 and process lifetime -----------------------------------------------------------------


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGTERM", "SIGINT", "SIGSTOP"])
def test_signalling_the_parent_cannot_stop_the_report(guarded: Runner, signame: str) -> None:
    """The parent is PID 1, and no signal sent to it stops the normal report."""
    code = f"""
import os, signal, time
parent = os.getppid()
os.kill(parent, signal.{signame})
time.sleep(0.2)
print("still here")
"""
    obs = guarded.script(code, state=("parent",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert obs.child_report is ChildReportStatus.OK
    assert obs.state["parent"].value == 1
    assert obs.stdout.text == "still here\n"


def test_kill_minus_one_finds_nobody_to_kill(guarded: Runner) -> None:
    """os.kill(-1, SIGKILL) reaches no process (PID 1 is exempt): ProcessLookupError."""
    obs = guarded.script("import os, signal\nos.kill(-1, signal.SIGKILL)\n")
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 1
    assert obs.exception is not None and obs.exception.type == "ProcessLookupError"


def test_killing_the_process_group_kills_only_the_snippet(guarded: Runner) -> None:
    """os.kill(0, SIGKILL) kills the snippet's process, but PID 1 still reports it."""
    obs = guarded.script("x = 1\nimport os, signal\nos.kill(0, signal.SIGKILL)\n", state=("x",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.timed_out is False
    _assert_killed_without_report(obs)


def test_a_double_forked_orphan_does_not_hold_the_run(guarded: Runner) -> None:
    """A double-forked orphan is killed when the snippet exits; the run ends, not at the limit."""
    code = """
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(2)
        os.write(1, b"orphan\\n")
        time.sleep(10**6)
    os._exit(0)
os.wait()
print("parent done")
"""
    obs = guarded.script(code, limits=Limits(wall_seconds=10))
    assert obs.status is RunStatus.COMPLETED
    assert obs.timed_out is False
    assert obs.exit_code == 0
    assert obs.stdout.text == "parent done\n"


def test_a_setsid_daemon_does_not_hold_the_run(guarded: Runner) -> None:
    """A setsid daemon is killed with the snippet: nothing it writes later is seen."""
    code = """
import os, time
ready_r, ready_w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(2, b"daemon up\\n")
        os.write(ready_w, b"1")
        time.sleep(2)
        os.write(2, b"daemon still here\\n")
        time.sleep(10**6)
    os._exit(0)
os.wait()
os.read(ready_r, 1)
print("parent done")
"""
    obs = guarded.script(code, limits=Limits(wall_seconds=10))
    assert obs.status is RunStatus.COMPLETED
    assert obs.timed_out is False
    assert obs.exit_code == 0
    assert obs.stdout.text == "parent done\n"
    assert obs.stderr.text == "daemon up\n"


# exits and crashes --------------------------------------------------------------------------


def test_os_exit_three_is_an_exit_without_a_report(guarded: Runner) -> None:
    """os._exit(3) is observed as exit code 3 with the child report missing."""
    obs = guarded.script("x = 1\nimport os\nos._exit(3)\n", state=("x",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 3
    assert obs.signal is None
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.exception is None
    assert obs.state == {}


@pytest.mark.parametrize(
    ("code", "exit_code", "reported", "stderr"),
    [
        pytest.param("raise SystemExit([1])", 1, "[1]", "[1]\n", id="list"),
        pytest.param("raise SystemExit(-1)", 255, -1, "", id="minus-one"),
        pytest.param("raise SystemExit(256)", 0, 256, "", id="wraps-to-zero"),
    ],
)
def test_system_exit_with_odd_codes_is_still_an_exception(
    guarded: Runner, code: str, exit_code: int, reported: object, stderr: str
) -> None:
    """SystemExit with a list, a negative or a wrapping code is an exception, exit as CPython's."""
    obs = guarded.script(code)
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == exit_code
    assert obs.exception is not None
    assert obs.exception.type == "SystemExit"
    assert obs.exception.exit_code == reported
    assert obs.stderr.text == stderr


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("raise KeyboardInterrupt\n", id="raised"),
        pytest.param(
            "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n",
            id="sigint-to-itself",
        ),
    ],
)
def test_keyboard_interrupt_is_an_exception_with_exit_130(guarded: Runner, code: str) -> None:
    """A KeyboardInterrupt is reported as that exception with exit code 130."""
    obs = guarded.script(code)
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 130
    assert obs.child_report is ChildReportStatus.OK
    assert obs.exception is not None and obs.exception.type == "KeyboardInterrupt"


def test_deep_recursion_is_a_recursion_error(guarded: Runner) -> None:
    """Unbounded recursion is reported as RecursionError, the run completes."""
    obs = guarded.script("def f(n):\n    return f(n + 1)\n\nf(0)\n")
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 1
    assert obs.exception is not None
    assert obs.exception.type == "RecursionError"
    assert obs.exception.message == "maximum recursion depth exceeded"


def test_lifting_the_limit_for_c_recursion_crashes_only_the_snippet(guarded: Runner) -> None:
    """C-level recursion past the stack (repr of a deep list) kills the child with SIGSEGV."""
    code = """
import sys
sys.setrecursionlimit(10**6)
nested = []
for _ in range(10**6):
    nested = [nested]
text = repr(nested)
"""
    obs = guarded.script(code, state=("text",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.signal == 11
    assert obs.exit_code is None
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.state == {}


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        pytest.param("script", "import ctypes\nctypes.string_at(0)\n", id="script"),
        pytest.param(
            "pytest", "import ctypes\n\ndef test_crashes():\n    ctypes.string_at(0)\n", id="test"
        ),
    ],
)
def test_a_segfault_kills_only_the_snippet(guarded: Runner, mode: str, code: str) -> None:
    """ctypes.string_at(0) kills the child with signal 11; no report, no tests, run completes."""
    obs = guarded.pytest(code) if mode == "pytest" else guarded.script(code)
    assert obs.status is RunStatus.COMPLETED
    assert obs.signal == 11
    assert obs.exit_code is None
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.tests == ()
    assert obs.state == {}


def test_a_huge_int_to_str_is_a_value_error(guarded: Runner) -> None:
    """str() of a 5001-digit int raises ValueError at the 4300-digit limit."""
    obs = guarded.script("x = 10 ** 5000\ntext = str(x)\n", state=("text",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 1
    assert obs.exception is not None
    assert obs.exception.type == "ValueError"
    assert obs.exception.message.startswith(
        "Exceeds the limit (4300 digits) for integer string conversion"
    )
    assert obs.state["text"].status is StateStatus.MISSING


# seccomp ------------------------------------------------------------------------------------

SYSCALL = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
"""


@pytest.mark.parametrize(
    ("call", "outcome"),
    [
        pytest.param(
            "params = (ctypes.c_ubyte * 120)()\n"
            "outcome = [libc.syscall(425, 8, ctypes.byref(params)), "
            "errno.errorcode[ctypes.get_errno()]]\n",
            [-1, "EPERM"],
            id="io_uring_setup",
        ),
        pytest.param(
            "import socket\ntry:\n    socket.socket(40, socket.SOCK_STREAM)\n"
            "    outcome = 'created'\nexcept OSError as exc:\n"
            "    outcome = [type(exc).__name__, errno.errorcode[exc.errno]]\n",
            ["PermissionError", "EPERM"],
            id="af_vsock",
        ),
        pytest.param(
            "outcome = [libc.unshare(0x10000000), errno.errorcode[ctypes.get_errno()]]\n",
            [-1, "EPERM"],
            id="unshare-user-namespace",
        ),
        pytest.param(
            'outcome = [libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None), '
            "errno.errorcode[ctypes.get_errno()]]\n",
            [-1, "EPERM"],
            id="mount",
        ),
    ],
)
def test_seccomp_refuses_dangerous_syscalls(guarded: Runner, call: str, outcome: object) -> None:
    """io_uring, AF_VSOCK sockets, user namespaces and mount are refused with EPERM."""
    obs = guarded.script(SYSCALL + call, state=("outcome",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.state["outcome"].value == outcome


SOCKET_FAMILIES = """
import errno, socket
outcome = {}
for name, family, kind, proto in CASES:
    try:
        socket.socket(family, kind, proto).close()
        outcome[name] = "created"
    except OSError as exc:
        outcome[name] = errno.errorcode.get(exc.errno, str(exc.errno))
"""


def test_only_the_socket_families_a_snippet_needs_can_be_created(guarded: Runner) -> None:
    """Unix, IPv4, IPv6 and routing netlink sockets work; every other family is EPERM."""
    cases = [
        ("unix", 1, 1, 0),
        ("inet", 2, 1, 0),
        ("inet6", 10, 2, 0),
        ("netlink-route", 16, 3, 0),
        ("netlink-audit", 16, 3, 9),
        ("netlink-kobject-uevent", 16, 3, 15),
        ("alg", 38, 5, 0),
        ("key", 15, 3, 2),
        ("packet", 17, 3, 0),
        ("xdp", 44, 3, 0),
        ("vsock", 40, 1, 0),
        ("bluetooth", 31, 3, 0),
        ("tipc", 30, 5, 0),
    ]
    obs = guarded.script(f"CASES = {cases!r}\n" + SOCKET_FAMILIES, state=("outcome",))
    assert obs.status is RunStatus.COMPLETED
    allowed = {"unix", "inet", "inet6", "netlink-route"}
    assert obs.state["outcome"].value == {
        name: "created" if name in allowed else "EPERM" for name, *_ in cases
    }


def test_the_policy_keeps_what_python_needs(guarded: Runner) -> None:
    """Threads, select, poll and epoll work under our policy on every runtime (under runsc a
    mistranslated rule once refused clone3 with EPERM and pselect6 outright)."""
    code = """
import select, selectors, threading, time
thread = threading.Thread(target=time.sleep, args=(0.01,))
thread.start()
thread.join()
r, w = __import__("os").pipe()
selected = select.select([r], [w], [], 0)
poller = select.poll()
poller.register(w, select.POLLOUT)
polled = len(poller.poll(0))
with selectors.DefaultSelector() as chosen:
    chosen.register(w, selectors.EVENT_WRITE)
    epolled = len(chosen.select(0))
result = [thread.is_alive(), [len(x) for x in selected], polled, epolled]
"""
    obs = guarded.script(code, state=("result",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0, obs.stderr.text
    assert obs.state["result"].value == [False, [0, 1, 0], 1, 1]


# state between runs -------------------------------------------------------------------------


def test_files_do_not_survive_into_the_next_run(guarded: Runner) -> None:
    """Files written in /sandbox, /tmp and /dev/shm by one run are not there in the next."""
    first = guarded.script(
        "for path in ('/sandbox/leftover.txt', '/tmp/leftover', '/dev/shm/leftover'):\n"
        "    with open(path, 'w') as handle:\n"
        "        handle.write('left behind')\n"
    )
    assert first.status is RunStatus.COMPLETED
    assert first.exit_code == 0
    code = """
import os
paths = ("/sandbox/leftover.txt", "/tmp/leftover", "/dev/shm/leftover")
seen = [os.path.exists(path) for path in paths]
listed = [sorted(os.listdir(folder)) for folder in ("/sandbox", "/tmp", "/dev/shm")]
"""
    second = guarded.script(code, state=("seen", "listed"))
    assert second.state["seen"].value == [False, False, False]
    assert second.state["listed"].value == [["main.py"], [], []]
    assert second.container_id != first.container_id


# hostile reports and encodings -------------------------------------------------------------

WRITE_OWN_REPORT = """
import os, stat

def is_pipe(fd):
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False

report_fd = max(fd for fd in range(3, 1024) if is_pipe(fd))
os.write(report_fd, PAYLOAD)
os._exit(0)
"""


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            b"[" * 100_000,
            id="too-deep-for-the-supervisor",
        ),
        pytest.param(
            b'{"mode":"script","state":{"x":{"status":"ok","value":'
            + b"[" * 960
            + b"]" * 960
            + b"}}}",
            id="too-deep-for-the-worker",
        ),
    ],
)
def test_a_deeply_nested_child_report_only_makes_it_invalid(
    guarded: Runner, payload: bytes
) -> None:
    """A deeply nested report written on the report pipe marks the child report invalid."""
    obs = guarded.script(f"PAYLOAD = {payload!r}\n" + WRITE_OWN_REPORT, state=("x",))
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 0
    assert obs.child_report is ChildReportStatus.INVALID
    assert obs.state == {}


def test_a_flood_under_a_large_output_cap_is_still_an_output_limit(guarded: Runner) -> None:
    """With a 3 MiB stdout cap, a flood is still output_limit_exceeded with the cap kept."""
    cap = 3 * 1024 * 1024
    obs = guarded.script('while True:\n    print("A" * 999)\n', limits=Limits(stdout_bytes=cap))
    assert obs.status is RunStatus.OUTPUT_LIMIT_EXCEEDED
    assert obs.stdout.truncated is True
    assert len(obs.stdout.text) == cap


def test_lone_surrogates_leave_a_json_serializable_observation(guarded: Runner) -> None:
    """A state value and an exception message with lone surrogates still serialize to JSON."""
    obs = guarded.script('x = "\\udcff"\nraise ValueError("\\ud800")\n', state=("x",))
    assert obs.status is RunStatus.COMPLETED
    again = Observation.model_validate_json(obs.model_dump_json())
    assert again.exception is not None and again.exception.type == "ValueError"
    assert set(again.state) == {"x"}


# hostile sources: compiling costs the snippet, never the supervisor ---------------------------


@pytest.mark.parametrize(
    ("source", "error_type"),
    [
        pytest.param("x = " + "1+" * 3000 + "1\n", "RecursionError", id="3000-term-sum"),
        pytest.param("x = " + "-" * 100_000 + "1\n", "MemoryError", id="100k-unary-minus"),
        pytest.param("x = " + "(" * 300 + ")" * 300 + "\n", "SyntaxError", id="deep-parens"),
        pytest.param("x = 1\0\n", None, id="nul-byte"),
        pytest.param("x = 1" + "0" * 5000 + "\n", "SyntaxError", id="5001-digit-literal"),
    ],
)
def test_a_hostile_source_is_the_learner_s_compile_error(
    guarded: Runner, source: str, error_type: str | None
) -> None:
    """Sources built to break the compiler end as the snippet's compile error, in one run.

    ``guarded.script`` raising (a protocol error would be retried as our fault, four
    containers for one submission) fails the test; so does anything but a syntax error.
    """
    obs = guarded.script(source)
    assert obs.status is RunStatus.SYNTAX_ERROR, obs
    assert obs.syntax_error is not None
    assert obs.syntax_error.file == "main.py"
    if error_type is not None:
        assert obs.syntax_error.type == error_type
    assert obs.exception is None
    assert obs.stdout.text == ""


def test_a_compile_bomb_near_the_memory_limit_costs_only_the_run(guarded: Runner) -> None:
    """A source whose compilation needs more memory than the run has never raises for us.

    Near the memory limit the kernel may reclaim and re-read file pages for seconds before
    the OOM kill; on a loaded host that can outlast the wall limit: the run's own verdict too.
    """
    source = "x = [" + "1," * 1_500_000 + "]\n"  # 3 MB: under the harness's 4 MiB cap
    obs = guarded.script(source, limits=Limits(memory_mib=64))
    # Under gVisor (ptrace platform) compiling 3 MB in 64 MiB can also outlast the wall limit.
    slow = (RunStatus.TIME_LIMIT_EXCEEDED,) if GVISOR else ()
    assert obs.status in (
        RunStatus.SYNTAX_ERROR,
        RunStatus.MEMORY_LIMIT_EXCEEDED,
        RunStatus.TIME_LIMIT_EXCEEDED,
        RunStatus.COMPLETED,
        *slow,
    ), obs
    assert obs.exception is None


def test_a_syntax_error_reports_the_run_s_wall_time_not_the_container_s_age(run: Runner) -> None:
    """The wall time of a syntax error is measured from the fork, not from the container start."""
    ready = run.sandbox.prestart(OLD_ENV, Limits())
    time.sleep(2)
    try:
        request = RunRequest(mode=RunMode.SCRIPT, files={"main.py": "def f(:\n"}, entry="main.py")
        obs = run.sandbox.execute(ready, request, Limits(), pool_hit=True)
    finally:
        run.sandbox.destroy(ready)
    assert obs.status is RunStatus.SYNTAX_ERROR
    assert obs.wall_seconds is not None and obs.wall_seconds < 2


# the worker itself --------------------------------------------------------------------------


def test_the_worker_holds_no_more_descriptors_after_every_case(
    run: Runner, engine: docker.DockerClient, worker_fds: int
) -> None:
    """After all the cases above, the worker process holds no more open descriptors."""
    assert _open_fds(run, engine) <= worker_fds
