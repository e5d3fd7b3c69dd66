"""Reuse mode's bookkeeping on the worker's side, with fake streams (real path: tests/security)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from grader.domain import (
    ChildReportStatus,
    EnvironmentRef,
    LearnerCode,
    Limits,
    Observation,
    RunMode,
    RunRequest,
    RunStatus,
)
from grader.sandbox import EnvironmentImage, PreimportProfile, ReadyContainer
from grader.sandbox.protocol import HarnessSubmission, harness_argv
from grader.sandbox.reuse import ANYONE, Shelf, judge_settings, suite_of
from grader.sandbox.seccomp import seccomp_policy
from grader.sandbox.stream import AttachStream
from grader.settings import ReuseMode, ReuseSettings

ENV = "env-a"
REPORT_KEY = "0123456789abcdef" * 2
KEY = (ENV, PreimportProfile.BARE)


@dataclass
class FakeStream:
    """What the shelf reads of an attach stream: the supervisor's next line."""

    lines: list[bytes] = field(default_factory=list)
    container_id: str = "c0"
    overflow: bool = False
    eof: bool = False
    foreign_lines: int = 0

    def read_keyed(self, deadline: float) -> bytes | None:
        while self.lines:
            line = self.lines.pop(0)
            if line.startswith(b'{"key":"' + REPORT_KEY.encode() + b'",'):
                return line
            self.foreign_lines += 1
        return None


def ready_line(runs: int, *, verified: bool = True, problems: tuple[str, ...] = ()) -> bytes:
    event = {
        "key": REPORT_KEY,
        "event": "ready",
        "version": 1,
        "pid": 1,
        "preimported": [],
        "preimport_failed": {},
        "python": "3.11.2",
        "reuse": True,
        "runs": runs,
        "verified": verified,
        "problems": list(problems),
    }
    return json.dumps(event, separators=(",", ":")).encode()


def container(
    name: str, *lines: bytes, limits: Limits | None = None, runs: int = 0
) -> ReadyContainer:
    stream = cast(AttachStream, FakeStream(list(lines), container_id=name))
    image = EnvironmentImage(environment=ENV, image_id="sha256:x")
    ready = ReadyContainer(
        stream, image, Limits(), time.time() + 600, PreimportProfile.BARE, reuse=True
    )
    ready.runs = runs
    return ready


def observation(**fields: Any) -> Observation:
    values: dict[str, Any] = {
        "status": RunStatus.COMPLETED,
        "environment": EnvironmentRef(name=ENV, image_id="sha256:x"),
        "mode": RunMode.SCRIPT,
        "exit_code": 0,
        "child_report": ChildReportStatus.OK,
    }
    values.update(fields)
    return Observation(**values)


@pytest.fixture
def destroyed() -> list[str]:
    return []


def shelf(destroyed: list[str], mode: ReuseMode = ReuseMode.SAME_KEY, **settings: Any) -> Shelf:
    return Shelf(
        ReuseSettings(mode=mode, **settings), lambda ready: destroyed.append(ready.container_id)
    )


def request(tenant: str | None = None, *, isolated: bool = False) -> RunRequest:
    learner = LearnerCode(files={"solution.py": "x = 1"}, modules=("solution",))
    return RunRequest(
        mode=RunMode.SCRIPT,
        files={"main.py": "pass"},
        entry="main.py",
        tenant=tenant,
        learner=learner if isolated else None,
    )


def test_the_tenant_of_a_run_follows_the_mode(destroyed: list[str]) -> None:
    """off: none; same-key: the request's key (none without one); any: everyone; isolated: none."""
    assert shelf(destroyed, ReuseMode.OFF).tenant_of(request("k")) is None
    assert shelf(destroyed, ReuseMode.SAME_KEY).tenant_of(request("k")) == "k"
    assert shelf(destroyed, ReuseMode.SAME_KEY).tenant_of(request(None)) is None
    assert shelf(destroyed, ReuseMode.ANY).tenant_of(request("k")) == ANYONE
    assert shelf(destroyed, ReuseMode.ANY).tenant_of(request("k", isolated=True)) is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"status": RunStatus.TIME_LIMIT_EXCEEDED, "timed_out": True},
            "status time_limit_exceeded",
        ),
        ({"status": RunStatus.MEMORY_LIMIT_EXCEEDED}, "status memory_limit_exceeded"),
        ({"status": RunStatus.OUTPUT_LIMIT_EXCEEDED}, "status output_limit_exceeded"),
        ({"status": RunStatus.SANDBOX_ERROR}, "status sandbox_error"),
        ({"exit_code": None, "signal": 9}, "not a plain exit"),
        ({"child_report": ChildReportStatus.MISSING}, "child report missing"),
        ({"child_report": ChildReportStatus.INVALID}, "child report invalid"),
        ({"oom_killed": True}, "a limit was hit"),
    ],
)
def test_a_run_that_did_not_end_plainly_costs_its_container(
    destroyed: list[str], fields: dict[str, Any], reason: str
) -> None:
    """Limits, signals, a missing or invalid child report: the container is not kept."""
    assert shelf(destroyed).discard_reason(container("c1"), observation(**fields)) == reason


def test_plain_exits_and_syntax_errors_keep_their_container(destroyed: list[str]) -> None:
    """A non-zero exit and a syntax error are plain ends: the container may be kept."""
    kept = shelf(destroyed)
    assert kept.discard_reason(container("c1"), observation(exit_code=3)) is None
    syntax = observation(
        status=RunStatus.SYNTAX_ERROR, exit_code=1, child_report=ChildReportStatus.MISSING
    )
    assert kept.discard_reason(container("c1"), syntax) is None


def test_run_and_age_limits_end_a_container(destroyed: list[str]) -> None:
    """The run that reaches max_runs, or a container past max_age, is the container's last."""
    limited = shelf(destroyed, max_runs=3, max_age_seconds=60)
    assert limited.discard_reason(container("c1", runs=2), observation()) == "max runs"
    old = container("c2")
    old.born -= 61
    assert limited.discard_reason(old, observation()) == "max age"


def test_a_verified_container_serves_only_its_tenant(destroyed: list[str]) -> None:
    """Kept for the key that used it: another key gets nothing, the same key gets it back."""
    kept = shelf(destroyed)
    used = container("c1", ready_line(1))
    kept.after_run(used, observation(), "alice")
    assert kept.wait_settled()
    assert kept.take(KEY, "bob", Limits()) is None
    assert kept.take(KEY, "alice", Limits()) is used
    assert used.runs == 1
    assert used.tenant == "alice"
    assert destroyed == []


@pytest.mark.parametrize(
    "line",
    [
        ready_line(1, verified=False, problems=("processes left: [7]",)),
        ready_line(2),
        b'{"event": "report"}',
        ready_line(1).replace(REPORT_KEY.encode(), b"f" * 32),
        None,
    ],
    ids=["unverified", "wrong-count", "not-ready", "another-key", "silent"],
)
def test_a_restore_not_verified_removes_the_container(
    destroyed: list[str], line: bytes | None
) -> None:
    """Anything but the next verified ready line: the container is removed, not kept."""
    kept = shelf(destroyed)
    used = container("c1", *([line] if line is not None else []))
    kept.after_run(used, observation(), "alice")
    assert kept.wait_settled()
    assert kept.take(KEY, "alice", Limits()) is None
    assert destroyed == ["c1"]


def test_other_fixed_limits_do_not_take_a_used_container(destroyed: list[str]) -> None:
    """A run with other fixed limits (memory here) needs another container."""
    kept = shelf(destroyed)
    kept.after_run(container("c1", ready_line(1)), observation(), "alice")
    assert kept.wait_settled()
    assert kept.take(KEY, "alice", Limits(memory_mib=128)) is None
    assert destroyed == ["c1"]


def test_idle_containers_beyond_the_bound_are_removed(destroyed: list[str]) -> None:
    """At most idle_per_key wait per key; the oldest goes."""
    kept = shelf(destroyed, idle_per_key=1)
    kept.after_run(container("c1", ready_line(1)), observation(), "alice")
    kept.after_run(container("c2", ready_line(1)), observation(), "alice")
    assert kept.wait_settled()
    assert destroyed == ["c1"]
    assert kept.idle_ids() == {"c2"}


def test_close_removes_every_idle_container(destroyed: list[str]) -> None:
    """Closing the shelf removes what waits."""
    kept = shelf(destroyed)
    kept.after_run(container("c1", ready_line(1)), observation(), "alice")
    assert kept.wait_settled()
    kept.close()
    assert destroyed == ["c1"]
    assert kept.idle_count() == 0


def test_the_reuse_seccomp_policy_refuses_message_queues_only() -> None:
    """Reuse containers lose the mq_* calls; strict ones keep moby's list unchanged."""
    strict = json.loads(seccomp_policy())
    reuse = json.loads(seccomp_policy(reuse=True))
    strict_names = {n for rule in strict["syscalls"] for n in rule["names"]}
    reuse_names = {n for rule in reuse["syscalls"] for n in rule["names"]}
    assert strict_names - reuse_names == {n for n in strict_names if n.startswith("mq_")}
    assert "mq_open" in strict_names
    assert reuse_names <= strict_names


def test_the_harness_is_told_to_reuse_only_in_reuse_mode() -> None:
    """--reuse is on the container's command line only when asked for."""
    assert "--reuse" not in harness_argv(("fastapi",))
    assert harness_argv(("fastapi",), reuse=True)[-3:] == ["--reuse", "--preimport", "fastapi"]


def _judge_line(tests: str = "def test_a(): pass\n", wall: float = 5.0) -> bytes:
    request = RunRequest(
        mode=RunMode.PYTEST,
        files={"test_hidden.py": tests},
        entry="test_hidden.py",
        learner=LearnerCode(files={"solution.py": "X = 1\n"}, modules=("solution",)),
    )
    return HarnessSubmission.of(request, Limits(wall_seconds=wall)).line()


def test_a_judges_tenant_is_its_suite_whatever_the_limits() -> None:
    """One suite, one tenant; other hidden tests are another tenant; limits do not count."""
    suite = suite_of(_judge_line())
    assert suite.startswith("suite:")
    assert suite_of(_judge_line(wall=9.0)) == suite
    assert suite_of(_judge_line("def test_b(): pass\n")) != suite
    assert suite != ANYONE


@pytest.mark.parametrize("mode", list(ReuseMode))
def test_judges_are_reused_by_their_own_setting_whatever_the_mode(mode: ReuseMode) -> None:
    """``judges`` decides the judges' shelf, whatever ``mode``; never under gVisor."""
    on = judge_settings(ReuseSettings(mode=mode, max_runs=7))
    off = judge_settings(ReuseSettings(mode=mode, judges=False))
    assert (on.mode, on.max_runs) == (ReuseMode.ANY, 7)
    assert off.mode is ReuseMode.OFF
    assert ReuseSettings().judges is True
    assert judge_settings(ReuseSettings(mode=mode), "runsc").mode is ReuseMode.OFF


def test_a_used_judge_serves_only_its_suite(destroyed: list[str]) -> None:
    """A judge kept for one suite is never handed to another suite's run."""
    shelf = Shelf(judge_settings(ReuseSettings()), lambda r: destroyed.append(r.container_id))
    judge_key = (ENV, PreimportProfile.JUDGE)
    used = container("j1", ready_line(runs=1))
    used.profile = PreimportProfile.JUDGE
    suite = suite_of(_judge_line())
    shelf.after_run(used, observation(), suite)
    assert shelf.wait_settled()
    assert shelf.take(judge_key, suite_of(_judge_line("def test_b(): pass\n")), Limits()) is None
    assert shelf.take(judge_key, suite, Limits()) is used
    assert destroyed == []
    shelf.close()


def test_used_judges_across_suites_are_bounded_the_longest_waiting_go_first(
    destroyed: list[str],
) -> None:
    """``max_idle`` bounds the idle judges of every suite together; the oldest is removed."""
    shelf = Shelf(
        judge_settings(ReuseSettings()),
        lambda r: destroyed.append(r.container_id),
        max_idle=2,
    )
    for number in range(3):
        used = container(f"j{number}", ready_line(runs=1))
        shelf.after_run(used, observation(), f"suite:{number}")
        assert shelf.wait_settled()
    assert shelf.idle_ids() == {"j1", "j2"}
    assert destroyed == ["j0"]
    shelf.close()
