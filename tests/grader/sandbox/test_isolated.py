"""The worker's relay of an isolated run, over real socket pairs standing in for containers.

Each fake container reads lines from its socket (what the worker sends on its stdin) and
writes Docker-framed stdout, as a supervisor does. The relay must copy ``rpc`` lines across,
stop at the reports, end the channel for one side when the other reports, and cut a side
that floods or sends an oversized frame.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from grader.domain import EnvironmentRef, LearnerCode, Limits, RunMode, RunRequest, RunStatus
from grader.errors import HarnessProtocolError
from grader.sandbox import frames
from grader.sandbox.frames import PairReports, relay
from grader.sandbox.isolated import combine
from grader.sandbox.protocol import JUDGE_MARGIN_SECONDS, HarnessSubmission
from grader.sandbox.stream import AttachStream

Script = Callable[["FakeContainer"], None]


class FakeContainer:
    """The container end of an attach socket: line-based stdin, Docker-framed stdout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.received: list[bytes] = []

    def read_line(self, timeout: float = 5.0) -> bytes | None:
        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, OSError):
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        self.received.append(line)
        return line

    def write(self, data: bytes) -> None:
        self.sock.sendall(struct.pack(">BxxxL", 1, len(data)) + data)


OPEN: list[socket.socket] = []
THREADS: list[threading.Thread] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    for sock in OPEN:
        sock.close()
    for thread in THREADS:
        thread.join(timeout=5)
    OPEN.clear()
    THREADS.clear()


def pair(judge: Script, learner: Script) -> tuple[AttachStream, AttachStream, list[FakeContainer]]:
    streams, fakes = [], []
    for script in (judge, learner):
        ours, theirs = socket.socketpair()
        OPEN.extend((ours, theirs))
        fake = FakeContainer(theirs)
        thread = threading.Thread(target=_quietly, args=(script, fake), daemon=True)
        thread.start()
        THREADS.append(thread)
        streams.append(AttachStream("c", ours, None, 4 * 1024 * 1024, key=REPORT_KEY))
        fakes.append(fake)
    return streams[0], streams[1], fakes


def _quietly(script: Script, fake: FakeContainer) -> None:
    with contextlib.suppress(OSError):
        script(fake)


REPORT_KEY = "0123456789abcdef" * 2


def report(**fields: object) -> bytes:
    """A supervisor's report line: it starts with the container's key."""
    line = json.dumps({"key": REPORT_KEY, "event": "report", **fields}, separators=(",", ":"))
    return line.encode() + b"\n"


def unkeyed(line: bytes | None) -> dict[str, Any]:
    """A report line's fields but its key."""
    fields = json.loads(line or b"")
    assert fields.pop("key") == REPORT_KEY
    return dict(fields)


def echo_learner(fake: FakeContainer) -> None:
    """Answers every frame with the frame reversed, until ``end``; then reports."""
    fake.read_line()  # the submission
    while (line := fake.read_line()) not in (None, b"end"):
        assert line is not None
        fake.write(b"rpc " + line[4:][::-1] + b"\n")
    fake.write(report(side="learner"))


def test_frames_go_across_and_both_reports_come_back() -> None:
    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        answers = []
        for question in (b'{"q":1}', b'{"q":2}'):
            fake.write(b"rpc " + question + b"\n")
            answers.append(fake.read_line())
        fake.write(report(side="judge", answers=[a.decode() for a in answers if a]))

    judge_stream, learner_stream, fakes = pair(judge, echo_learner)
    got = relay(judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 10)
    assert unkeyed(got.judge) == {
        "event": "report",
        "side": "judge",
        "answers": ['rpc }1:"q"{', 'rpc }2:"q"{'],
    }
    assert unkeyed(got.learner) == {"event": "report", "side": "learner"}
    assert (got.frames_to_learner, got.frames_to_judge, got.cut) == (2, 2, None)
    assert fakes[0].received[0] == b"J" and fakes[1].received[0] == b"L"
    assert fakes[1].received[-1] == b"end"  # the learner was told the channel is over


def test_a_learner_that_reports_first_ends_the_judges_channel() -> None:
    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        fake.write(b'rpc {"q":1}\n')
        line = fake.read_line()
        fake.write(report(side="judge", saw=(line or b"").decode()))

    def learner(fake: FakeContainer) -> None:
        fake.read_line()
        fake.write(report(side="learner", status="syntax_error"))

    judge_stream, learner_stream, _ = pair(judge, learner)
    got = relay(judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 10)
    assert unkeyed(got.judge)["saw"] == "end"
    assert unkeyed(got.learner)["status"] == "syntax_error"


@pytest.mark.parametrize(
    ("flood", "cut"),
    [
        (lambda: [b"rpc " + b"x" * (frames.MAX_FRAME_BYTES + 1) + b"\n"], "a frame over"),
        (lambda: [b'rpc {"x":1}\n'] * 50, "more than 100 bytes"),
    ],
)
def test_a_flooding_learner_is_cut_off(
    monkeypatch: pytest.MonkeyPatch, flood: Callable[[], list[bytes]], cut: str
) -> None:
    monkeypatch.setattr(frames, "MAX_RELAYED_BYTES", 100)

    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        fake.write(b'rpc {"q":1}\n')
        seen = []
        while (line := fake.read_line()) not in (None, b"end"):
            seen.append(line)
        fake.write(report(side="judge", frames=len(seen)))

    def learner(fake: FakeContainer) -> None:
        fake.read_line()
        fake.read_line()
        for chunk in flood():
            fake.write(chunk)
        fake.read_line()
        fake.write(report(side="learner"))

    judge_stream, learner_stream, _ = pair(judge, learner)
    got = relay(judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 10)
    assert got.cut is not None and got.cut.startswith("the learner sent") and cut in got.cut
    assert unkeyed(got.judge)["frames"] < 50  # never the whole flood


def test_a_silent_learner_leaves_no_learner_report_after_the_grace() -> None:
    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        fake.write(report(side="judge"))

    def learner(fake: FakeContainer) -> None:
        fake.read_line(timeout=4)  # the submission, then silence

    judge_stream, learner_stream, _ = pair(judge, learner)
    got = relay(judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 60)
    assert got.judge is not None and got.learner is None


# combining the two reports --------------------------------------------------------------

ENV = EnvironmentRef(name="env", image_id="sha256:x")
REQUEST = RunRequest(
    mode=RunMode.PYTEST,
    files={"test_hidden.py": "def test_x(): pass"},
    entry="test_hidden.py",
    learner=LearnerCode(files={"solution.py": "x = 1"}, modules=("solution",)),
)


def final(mode: str, **fields: object) -> bytes:
    body: dict[str, object] = {
        "event": "report",
        "version": 1,
        "status": "completed",
        "mode": mode,
        "exit_code": 0,
        "wall_seconds": 0.5,
        "cpu_seconds": 0.25,
        "harness_seconds": 0.6,
        "timed_out": False,
    }
    return json.dumps(body | fields).encode()


def stream(text: str) -> dict[str, object]:
    return {"b64": base64.b64encode(text.encode()).decode(), "bytes": len(text), "truncated": False}


JUDGE_CHILD = {
    "status": "ok",
    "report": {
        "mode": "judge",
        "pytest_exit_code": 0,
        "tests": [{"nodeid": "test_hidden.py::test_x", "outcome": "passed"}],
    },
}


def observe(judge: bytes | None, learner: bytes | None, **kwargs: object) -> object:
    args: dict[str, object] = {
        "environment": ENV,
        "wall_limit": 5.0,
        "learner_oom": False,
        "container_id": "c",
        "pool_hit": True,
    }
    return combine(PairReports(judge=judge, learner=learner), REQUEST, **(args | kwargs))  # type: ignore[arg-type]


def test_tests_come_from_the_judge_and_output_from_the_learner() -> None:
    obs = observe(
        final("judge", child_report=JUDGE_CHILD, stdout=stream("pytest chatter")),
        final(
            "serve",
            child_report={"status": "ok", "report": {"mode": "serve"}},
            stdout=stream("learner print\n"),
        ),
    )
    assert obs.status is RunStatus.COMPLETED  # type: ignore[attr-defined]
    assert [t.nodeid for t in obs.tests] == ["test_hidden.py::test_x"]  # type: ignore[attr-defined]
    assert obs.stdout.text == "learner print\n"  # type: ignore[attr-defined]
    assert obs.cpu_seconds == 0.5  # type: ignore[attr-defined]


def test_a_learner_claiming_test_results_is_not_heard() -> None:
    """The learner's child report is validated as a ``serve`` report and never supplies tests."""
    forged = {
        "status": "ok",
        "report": {
            "mode": "judge",
            "tests": [{"nodeid": "test_hidden.py::test_x", "outcome": "passed"}],
        },
    }
    obs = observe(
        final("judge", child_report={"status": "missing"}, exit_code=1),
        final("serve", child_report=forged),
    )
    assert obs.tests == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("learner_fields", "status"),
    [
        ({"timed_out": True, "wall_seconds": 5.1}, RunStatus.TIME_LIMIT_EXCEEDED),
        ({"memory": {"peak_bytes": 1, "oom_kills": 1}}, RunStatus.MEMORY_LIMIT_EXCEEDED),
        ({"output_limit_exceeded": True}, RunStatus.OUTPUT_LIMIT_EXCEEDED),
    ],
)
def test_a_limit_the_learner_broke_decides_the_status(
    learner_fields: dict[str, object], status: RunStatus
) -> None:
    obs = observe(final("judge", child_report=JUDGE_CHILD), final("serve", **learner_fields))
    assert obs.status is status  # type: ignore[attr-defined]


def test_a_learner_syntax_error_is_the_runs_syntax_error() -> None:
    error = {"type": "SyntaxError", "message": "invalid syntax", "file": "solution.py", "line": 3}
    obs = observe(None, final("serve", status="syntax_error", syntax_error=error))
    assert obs.status is RunStatus.SYNTAX_ERROR  # type: ignore[attr-defined]
    assert obs.syntax_error.line == 3  # type: ignore[attr-defined]


def test_no_judge_report_is_a_time_limit_and_a_lost_learner_for_memory_is_memory() -> None:
    assert observe(None, final("serve")).status is RunStatus.TIME_LIMIT_EXCEEDED  # type: ignore[attr-defined]
    assert observe(None, None, learner_oom=True).status is RunStatus.MEMORY_LIMIT_EXCEEDED  # type: ignore[attr-defined]


def test_a_harness_error_on_either_side_is_ours() -> None:
    with pytest.raises(HarnessProtocolError, match="the learner's harness failed: boom"):
        observe(final("judge"), final("serve", status="harness_error", error="boom"))


def test_the_two_submission_lines() -> None:
    limits = Limits(wall_seconds=3)
    judge = json.loads(HarnessSubmission.of(REQUEST, limits).line())
    learner = json.loads(HarnessSubmission.serving(REQUEST, limits).line())
    assert (judge["mode"], judge["files"], judge["modules"]) == (
        "judge",
        {"test_hidden.py": "def test_x(): pass"},
        ["solution"],
    )
    assert judge["limits"]["wall_seconds"] == 3 + JUDGE_MARGIN_SECONDS
    assert (learner["mode"], learner["files"], learner["entry"], learner["modules"]) == (
        "serve",
        {"solution.py": "x = 1"},
        "solution.py",
        ["solution"],
    )
    assert learner["limits"]["wall_seconds"] == 3


def test_a_reusable_judge_gets_its_pending_frames_then_end_once() -> None:
    """With ``close_judge`` the judge is sent ``end`` after the run, exactly once."""

    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        fake.write(b'rpc {"q":1}\n')
        fake.read_line()
        fake.write(report(side="judge"))
        fake.read_line()  # what the worker sends after the report

    judge_stream, learner_stream, fakes = pair(judge, echo_learner)
    got = relay(
        judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 10, close_judge=True
    )
    THREADS[0].join(timeout=5)
    assert got.judge_closed is True
    assert fakes[0].received == [b"J", b'rpc }1:"q"{', b"end"]


def test_a_judge_told_end_during_the_run_is_not_told_twice() -> None:
    """A learner reporting first ends the judge's channel; closing it sends nothing more."""

    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        fake.read_line()  # end, once the learner reported
        fake.write(report(side="judge"))
        fake.read_line(timeout=0.5)  # nothing more may come

    def learner(fake: FakeContainer) -> None:
        fake.read_line()
        fake.write(report(side="learner", status="syntax_error"))

    judge_stream, learner_stream, fakes = pair(judge, learner)
    got = relay(
        judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 10, close_judge=True
    )
    THREADS[0].join(timeout=5)
    assert got.judge_closed is True
    assert fakes[0].received == [b"J", b"end"]


def test_a_judge_that_never_reported_is_not_closed_for_reuse() -> None:
    """No judge report (deadline): nothing is sent and it is not reusable."""

    def judge(fake: FakeContainer) -> None:
        fake.read_line()
        fake.read_line(timeout=2)

    judge_stream, learner_stream, _ = pair(judge, echo_learner)
    got = relay(
        judge_stream, learner_stream, b"J\n", b"L\n", time.monotonic() + 0.5, close_judge=True
    )
    assert got.judge is None
    assert got.judge_closed is False
