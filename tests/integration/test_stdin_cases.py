"""Stdin and stdin cases in the real sandbox: what each run reads, and how cases share time."""

from __future__ import annotations

import pytest

from grader.domain import Limits, RunMode, RunRequest, RunStatus
from tests.conftest import OLD_ENV, Runner

pytestmark = pytest.mark.docker


def cases_request(code: str, *stdins: str) -> RunRequest:
    return RunRequest(mode=RunMode.SCRIPT, files={"main.py": code}, entry="main.py", cases=stdins)


def test_a_stdin_larger_than_a_pipe_buffer_is_read_whole(run: Runner) -> None:
    """1 MiB of stdin (16 pipe buffers) reaches the program whole, then end of file."""
    code = (
        "import sys\ndata = sys.stdin.buffer.read()\nprint(len(data), data[-3:], sys.stdin.read())"
    )
    request = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": code}, entry="main.py", stdin="ab\n" * 349_526
    )
    obs = run.sandbox.run(OLD_ENV, request, Limits())
    assert obs.status is RunStatus.COMPLETED
    assert obs.stdout.text == "1048578 b'ab\\n' \n"


def test_each_case_reads_its_own_stdin_in_its_own_process(run: Runner) -> None:
    """Three cases, three processes, three outputs in order; the run's files are fresh each time."""
    code = (
        "import os\n"
        "print(input().upper(), os.getpid() > 1, os.path.exists('mark'))\n"
        "open('mark', 'w').close()\n"
    )
    obs = run.sandbox.run(OLD_ENV, cases_request(code, "a\n", "b\n", "c"), Limits())
    assert obs.status is RunStatus.COMPLETED
    assert [c.stdout.text for c in obs.cases] == [
        "A True False\n",
        "B True False\n",
        "C True False\n",
    ]
    assert all(c.exit_code == 0 and c.wall_seconds is not None for c in obs.cases)


def test_a_looping_case_uses_its_share_and_later_cases_still_run(run: Runner) -> None:
    """With 2 s for 2 cases, the first loops out its share (about 1 s); the second runs."""
    code = "if input() == 'loop':\n    while True:\n        pass\nprint('ok')\n"
    obs = run.sandbox.run(OLD_ENV, cases_request(code, "loop\n", "go\n"), Limits(wall_seconds=2.0))
    first, second = obs.cases
    assert (first.status, first.timed_out) == (RunStatus.TIME_LIMIT_EXCEEDED, True)
    assert first.wall_limit is not None and first.wall_limit <= 1.0
    assert (second.status, second.stdout.text) == (RunStatus.COMPLETED, "ok\n")
    assert obs.status is RunStatus.COMPLETED


def test_a_syntax_error_ends_a_cases_run_as_a_whole(run: Runner) -> None:
    """Nothing runs when the code does not compile: one syntax error, no cases."""
    obs = run.sandbox.run(OLD_ENV, cases_request("print(", "1", "2"), Limits())
    assert obs.status is RunStatus.SYNTAX_ERROR
    assert obs.cases == ()
