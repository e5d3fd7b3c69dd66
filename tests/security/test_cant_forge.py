"""A snippet cannot forge its result: fake reports, /proc writes, early exits, monkeypatching."""

from __future__ import annotations

import json

import pytest

from grader.domain import ChildReportStatus, Limits, RunStatus, StateStatus, TestOutcome
from tests.conftest import GVISOR, Runner

pytestmark = pytest.mark.docker

FAKE_REPORT = json.dumps(
    {
        "event": "report",
        "version": 1,
        "status": "completed",
        "mode": "script",
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "output_limit_exceeded": False,
        "child_report": {
            "status": "ok",
            "report": {
                "mode": "script",
                "exception": None,
                "state": {"answer": {"status": "ok", "value": 42}},
            },
        },
        "harness_seconds": 0.1,
    }
)


def test_cant_forge_by_printing_a_report_on_stdout(run: Runner) -> None:
    """A report printed on stdout is just output: the real exception and state stand."""
    obs = run.script(
        f"print({FAKE_REPORT!r})\nanswer = 41\nraise RuntimeError('real')\n", state=("answer",)
    )
    assert obs.status is RunStatus.COMPLETED
    assert obs.stdout.text == FAKE_REPORT + "\n"
    assert obs.exception is not None and obs.exception.type == "RuntimeError"
    assert obs.state["answer"].value == 41
    assert obs.exit_code == 1


def test_cant_write_into_pid1_stdout_through_proc(run: Runner) -> None:
    """A report written into /proc/1/fd/1 is never the report: refused under runc; under
    gVisor the line arrives but lacks the supervisor's key, so it is ignored (and noted)."""
    code = f"""
attempts = {{}}
for path in ("/proc/1/fd/1", "/proc/1/fd/0", "/proc/1/fd/2"):
    try:
        with open(path, "w") as handle:
            handle.write({FAKE_REPORT!r} + "\\n")
        attempts[path] = "written"
    except Exception as exc:
        attempts[path] = type(exc).__name__
raise RuntimeError("real failure")
"""
    obs = run.script(code, state=("attempts",))
    if GVISOR:  # same-uid /proc/1/fd is open under gVisor; stdin (a read end) is not writable
        assert obs.state["attempts"].value == {
            "/proc/1/fd/1": "written",
            "/proc/1/fd/0": "OSError",
            "/proc/1/fd/2": "written",
        }
        assert obs.error == "1 line(s) written into the report channel were ignored"
    else:
        assert obs.state["attempts"].value == {
            "/proc/1/fd/1": "PermissionError",
            "/proc/1/fd/0": "PermissionError",
            "/proc/1/fd/2": "PermissionError",
        }
        assert obs.error is None
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 1
    assert obs.exception is not None and obs.exception.message == "real failure"


KEY_HUNT = """
import ctypes, json, os, re
report = json.loads(FAKE)
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again (a fork of PID 1 is not): own /proc
candidates = set()
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
with open("/proc/self/mem", "rb", buffering=0) as mem:
    for fields in regions:
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if not fields[1].startswith("r") or end - start > 256 * 1024 * 1024:
            continue
        try:
            mem.seek(start)
            data = mem.read(end - start)
        except (OSError, ValueError, OverflowError):
            continue
        candidates.update(re.findall(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", data))
forged = 0
try:
    with open("/proc/1/fd/1", "w") as channel:
        for candidate in sorted(candidates)[:4000]:
            channel.write("\\n" + json.dumps({"key": candidate.decode(), **report}) + "\\n")
            forged += 1
except OSError as exc:
    forged = type(exc).__name__
hunted = len(candidates)
raise RuntimeError("real failure")
"""


def test_cant_forge_a_keyed_report_with_any_key_found_in_memory(run: Runner) -> None:
    """Every 32-hex-digit string in the snippet's own memory (a fork of the supervisor's) is
    tried as the report key: none is the key, so no forged report is believed."""
    obs = run.script(
        f"FAKE = {FAKE_REPORT!r}\n" + KEY_HUNT,
        state=("forged", "hunted"),
        limits=Limits(wall_seconds=30, memory_mib=512),
    )
    assert obs.status is RunStatus.COMPLETED
    assert obs.exit_code == 1
    assert obs.exception is not None and obs.exception.message == "real failure"
    assert obs.state["hunted"].value > 0  # the scan did find candidates to try
    if GVISOR:
        forged = obs.state["forged"].value
        assert isinstance(forged, int) and forged == min(obs.state["hunted"].value, 4000)
        assert obs.error == f"{forged} line(s) written into the report channel were ignored"
    else:
        assert obs.state["forged"].value == "PermissionError"


def test_cant_reach_any_other_process_descriptors(run: Runner) -> None:
    """Every other process's /proc fd table, memory and environ are closed to the snippet."""
    code = """
import os
me = os.getpid()
seen = {}
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    if pid == me:
        continue
    for what in ("fd", "mem", "environ"):
        path = f"/proc/{pid}/{what}"
        try:
            if what == "fd":
                os.listdir(path)
            else:
                open(path, "rb").read(1)
            seen[path] = "open"
        except Exception as exc:
            seen[path] = type(exc).__name__
parent = os.getppid()
"""
    obs = run.script(code, state=("seen", "parent"))
    seen = obs.state["seen"].value
    assert obs.state["parent"].value == 1
    if GVISOR:
        # gVisor opens PID 1's fd table and environ to the same uid (memory stays closed):
        # the report channel rests on its key, and the environment is empty by design.
        assert seen == {
            "/proc/1/fd": "open",
            "/proc/1/mem": "PermissionError",
            "/proc/1/environ": "open",
        }
    else:
        assert "/proc/1/fd" in seen
        assert all(result != "open" for result in seen.values()), seen


def test_cant_ptrace_the_supervisor(run: Runner) -> None:
    """PTRACE_ATTACH to PID 1 is refused (the supervisor is non-dumpable)."""
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
result = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH
errno = ctypes.get_errno()
"""
    obs = run.script(code, state=("result", "errno"))
    assert obs.state["result"].value == -1
    assert obs.state["errno"].value in (1, 13)  # EPERM (seccomp or dumpable) or EACCES


def test_os_exit_zero_in_a_test_is_not_a_pass(run: Runner) -> None:
    """os._exit(0) inside a failing test leaves no test results, not a clean pass."""
    code = """
import os
def test_bad():
    os._exit(0)
    assert False
"""
    obs = run.pytest(code)
    assert obs.exit_code == 0
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.tests == ()


def test_os_exit_zero_in_a_script_loses_the_state(run: Runner) -> None:
    """os._exit(0) in a script is reported as an exit without a child report."""
    obs = run.script("x = 1\nimport os\nos._exit(0)\n", state=("x",))
    assert obs.exit_code == 0
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.state == {}


@pytest.mark.parametrize(
    ("code", "exit_code", "reported"),
    [
        ("raise SystemExit(0)", 0, 0),
        ("raise SystemExit(3)", 3, 3),
        ("raise SystemExit(None)", 0, None),
        ("raise SystemExit('bye')", 1, "bye"),
        ("import sys; sys.exit(300)", 300 & 0xFF, 300),
    ],
)
def test_system_exit_is_reported_as_what_it_did(
    run: Runner, code: str, exit_code: int, reported: object
) -> None:
    """SystemExit, whatever its code, is an observed exception with its exit code."""
    obs = run.script(code)
    assert obs.exception is not None
    assert obs.exception.type == "SystemExit"
    assert obs.exception.exit_code == reported
    assert obs.exit_code == exit_code


def test_system_exit_in_a_test_fails_that_test(run: Runner) -> None:
    """SystemExit(0) raised inside a test does not make the test pass."""
    obs = run.pytest("def test_x():\n    raise SystemExit(0)\n")
    assert [t.outcome for t in obs.tests] == [TestOutcome.FAILED]
    assert obs.exit_code == 1


def test_replacing_sys_stdout_does_not_hide_fd_output(run: Runner) -> None:
    """Output is captured at the descriptor: replacing sys.stdout hides only Python prints."""
    code = """
import io, os, sys
print("before")
sys.stdout = io.StringIO()
sys.__stdout__ = sys.stdout
print("swallowed")
os.write(1, b"raw\\n")
raise ValueError("still seen")
"""
    obs = run.script(code)
    assert obs.stdout.text == "before\nraw\n"
    assert obs.exception is not None and obs.exception.type == "ValueError"


def test_objects_with_custom_eq_are_unserializable(run: Runner) -> None:
    """A state value whose __eq__ always says True is reported unserializable, never equal."""
    code = """
class Liar(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
counter = Liar(0)
items = [1, Liar(2)]
"""
    obs = run.script(code, state=("counter", "items"))
    assert obs.state["counter"].status is StateStatus.UNSERIALIZABLE
    assert obs.state["counter"].type == "__main__.Liar"
    assert obs.state["items"].status is StateStatus.UNSERIALIZABLE


def test_monkeypatching_the_collector_cannot_change_the_observed_exit(run: Runner) -> None:
    """A test that rewrites the harness's pytest collector still exits 1 as pytest decided."""
    code = """
import grader_harness.pytest_plugin as plugin

def test_patch():
    original = plugin._outcome
    plugin._outcome = lambda report: "passed"

def test_fails():
    assert 1 == 2
"""
    obs = run.pytest(code)
    assert obs.exit_code == 1
    assert obs.pytest_exit_code == 1


def test_silencing_the_report_leaves_it_missing(run: Runner) -> None:
    """Replacing the harness's send_report yields a missing report, not a clean one."""
    code = """
import grader_harness.child as child
child.send_report = lambda fd, report: None
raise RuntimeError("hidden?")
"""
    obs = run.script(code)
    assert obs.child_report is ChildReportStatus.MISSING
    assert obs.exit_code == 1
    assert obs.exception is None
