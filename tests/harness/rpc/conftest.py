"""A real learner side in a subprocess (pipes, cwd holding the learner's files) for each test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "images" / "harness"))

from grader_harness.protocol import PYTEST_SESSION_OPTIONS
from grader_harness.rpc.channel import Channel
from grader_harness.rpc.remote import RemoteSession

HARNESS = Path(__file__).resolve().parents[3] / "images" / "harness"

SERVE = (
    "import sys; sys.path.insert(0, {harness!r}); "
    "from grader_harness.rpc.channel import Channel; "
    "from grader_harness.rpc.serve import serve; "
    "serve(Channel({read}, {write}), {modules!r})"
)

# A hostile learner side: ``channel`` is its end; the test's script says what it sends.
FAKE = (
    "import sys, time; sys.path.insert(0, {harness!r})\n"
    "from grader_harness.rpc.channel import Channel\n"
    "channel = Channel({read}, {write})\n"
)


class Learner:
    """One learner process and the judge's session with it."""

    def __init__(
        self, process: subprocess.Popen[bytes], session: RemoteSession, *, fake: bool
    ) -> None:
        self.process = process
        self.session = session
        self.fake = fake


def spawn(
    cwd: Path, modules: list[str], script: str | None = None
) -> tuple[subprocess.Popen[bytes], Channel]:
    """Start ``script`` (default: the real ``serve``) with a channel on two pipes."""
    to_learner_r, to_learner_w = os.pipe()
    to_judge_r, to_judge_w = os.pipe()
    fields = {"harness": str(HARNESS), "read": to_learner_r, "write": to_judge_w}
    code = (
        SERVE.format(modules=modules, **fields)
        if script is None
        else FAKE.format(**fields) + script
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        pass_fds=(to_learner_r, to_judge_w),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    os.close(to_learner_r)
    os.close(to_judge_w)
    return process, Channel(to_judge_r, to_learner_w)


@pytest.fixture
def learner(tmp_path: Path) -> Iterator[Callable[..., Learner]]:
    """Start a learner side serving ``files`` from a fresh directory; install its modules."""
    started: list[tuple[Learner, Channel, list[str]]] = []

    def start(
        files: dict[str, str],
        modules: tuple[str, ...] = ("solution",),
        *,
        timeout: float = 20.0,
        script: str | None = None,
        install: bool = True,
    ) -> Learner:
        home = tmp_path / "learner"
        home.mkdir(exist_ok=True)
        for name, text in files.items():
            (home / name).write_text(text, encoding="utf-8")
        process, channel = spawn(home, list(modules), script)
        session = RemoteSession(channel, modules, call_timeout=timeout)
        if install:
            session.install()
        handle = Learner(process, session, fake=script is not None)
        started.append((handle, channel, list(modules)))
        return handle

    yield start
    for handle, channel, modules in started:
        handle.session.close()
        for name in modules:
            sys.modules.pop(name, None)
        os.close(channel.write_fd)
        try:  # a real learner side ends on bye; a fake one, or a learner thread, is killed
            handle.process.wait(timeout=0.1 if handle.fake else 5)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait()
        os.close(channel.read_fd)
        assert handle.process.stdout is not None and handle.process.stderr is not None
        handle.process.stdout.close()
        handle.process.stderr.close()


class Outcomes:
    """A pytest plugin noting each test's outcome: passed, failed, or error (setup/teardown)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.rpartition("::")[2]
        if report.when == "call":
            self.outcomes[name] = report.outcome
        elif report.failed:
            self.outcomes[name] = "error"
        if report.failed:
            self.messages[name] = str(report.longrepr)[-3000:]

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes["<collection>"] = "error"
            self.messages["<collection>"] = str(report.longrepr)[-3000:]


def run_hidden(directory: Path, code: str) -> Outcomes:
    """Run hidden tests with pytest in this (the judge's) process, as the harness configures it."""
    directory.mkdir(exist_ok=True)
    (directory / "test_hidden.py").write_text(code, encoding="utf-8")
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    plugin = Outcomes()
    pytest.main(
        [
            str(directory / "test_hidden.py"),
            "-c",
            str(directory / "pytest.ini"),
            "--rootdir",
            str(directory),
            "--import-mode=importlib",
            "-q",
            "-p",
            "no:randomly",
            *PYTEST_SESSION_OPTIONS,
        ],
        plugins=[plugin],
    )
    for name in [m for m in sys.modules if m.startswith("test_hidden")]:
        del sys.modules[name]
    return plugin
