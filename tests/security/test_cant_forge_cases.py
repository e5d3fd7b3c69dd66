"""Stdin cases: one case cannot reach another, nor turn its own failure into a pass."""

from __future__ import annotations

import json

import pytest

from grader.domain import Limits, RunMode, RunRequest, RunStatus
from grader.domain.challenge import Challenge
from grader.domain.compare import compare
from grader.domain.grading import request_for
from grader.domain.verdict import VerdictStatus
from tests.conftest import GVISOR, OLD_ENV, Runner

pytestmark = pytest.mark.docker

SUM = Challenge.model_validate(
    {
        "id": "sum",
        "set": "s",
        "title": "t",
        "kind": "io",
        "prompt": "p",
        "code": "a, b = map(int, input().split())\nprint(a + b)\n",
        "expectation": {
            "io": {
                "cases": [
                    {"stdin": "2 3\n", "stdout": "5\n"},
                    {"stdin": "4 4\n", "stdout": "8\n"},
                ]
            }
        },
    }
)


def cases(code: str, *stdins: str) -> RunRequest:
    return RunRequest(mode=RunMode.SCRIPT, files={"main.py": code}, entry="main.py", cases=stdins)


def test_cant_leave_a_process_behind_for_the_next_case(run: Runner) -> None:
    """A daemon started by one case is killed before the next case starts."""
    code = (
        "import os, sys, time\n"
        "if input() == 'plant':\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            while True:\n"
        "                with open('/sandbox/planted', 'w') as f:\n"
        "                    f.write('from case 1')\n"
        "                time.sleep(0.01)\n"
        "        os._exit(0)\n"
        "    time.sleep(0.2)\n"
        "    print('planted')\n"
        "else:\n"
        "    time.sleep(0.3)\n"
        "    planted = os.path.exists('/sandbox/planted')\n"
        "    print(open('/sandbox/planted').read() if planted else 'none')\n"
    )
    obs = run.sandbox.run(OLD_ENV, cases(code, "plant\n", "look\n"), Limits())
    assert [c.stdout.text for c in obs.cases] == ["planted\n", "none\n"]


def test_cant_pass_a_case_by_printing_a_report(run: Runner) -> None:
    """A report line printed (or written to /proc/1/fd/1) is only the case's own output."""
    fake = json.dumps({"event": "report", "version": 1, "status": "completed", "cases": []})
    code = (
        f"print({fake!r})\n"
        "try:\n"
        "    with open('/proc/1/fd/1', 'w') as out:\n"
        f"        out.write({fake!r} + '\\n')\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    obs = run.sandbox.run(OLD_ENV, request_for(SUM, code, SUM.expectation), Limits())
    assert obs.status is RunStatus.COMPLETED
    # Under gVisor the write into PID 1's stdout succeeds, but the line lacks the key.
    refused = "" if GVISOR else "PermissionError\n"
    assert [c.stdout.text for c in obs.cases] == [fake + "\n" + refused] * 2
    assert SUM.expectation is not None
    verdict = compare(SUM.kind, SUM.expectation, obs)
    assert (verdict.status, verdict.points) == (VerdictStatus.FAILED, 0.0)


def test_cant_read_the_expected_output_from_the_sandbox(run: Runner) -> None:
    """The expected outputs are nowhere in the container: not in files, not in our memory."""
    code = (
        "import os\n"
        "found = []\n"
        "for top, _, names in os.walk('/sandbox'):\n"
        "    for name in names:\n"
        "        if '8\\n' in open(os.path.join(top, name), errors='replace').read():\n"
        "            found.append(name)\n"
        "try:\n"
        "    if '8\\n' in open('/proc/1/environ').read():\n"
        "        found.append('/proc/1/environ')\n"
        "    print('environ readable')\n"
        "except OSError:\n"
        "    pass\n"
        "print(found)\n"
    )
    obs = run.sandbox.run(OLD_ENV, request_for(SUM, code, SUM.expectation), Limits())
    # gVisor lets the same uid read PID 1's environ; it holds no expected output.
    readable = "environ readable\n" if GVISOR else ""
    assert [c.stdout.text for c in obs.cases] == [readable + "[]\n"] * 2
