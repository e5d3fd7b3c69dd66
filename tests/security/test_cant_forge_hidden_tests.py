"""Hidden tests cannot be forged, read or disturbed by the code under test.

Each case submits a learner's ``solution.py`` that is wrong (it lacks what the hidden tests
check) plus a trick, through the production recipe (``request_for`` with its isolated run, the
real sandbox, ``compare``). None may come back ``passed``; the hidden tests' text must not be
readable from the learner's process; and a wrong solution without a trick is the control.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.domain import Limits, Verdict, VerdictStatus
from grader.domain.challenge import Challenge, Expectation
from grader.domain.compare import compare
from grader.domain.grading import request_for
from grader.domain.hidden import TestsExpectation
from grader.domain.loader import load_challenge
from tests.conftest import NEW_ENV, OLD_ENV, Runner

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
Q5 = load_challenge(
    ROOT / "challenges" / "fastapi-async-testing" / "q5-write-the-items-endpoints.yaml"
)
MARKER = "hidden-marker-7f3a9c"

PLAIN_TESTS = textwrap.dedent(f'''
    """{MARKER}: the hidden tests of a plain-function challenge."""
    import pytest

    from solution import add, parse_age


    def test_add():
        assert add(1, 2) == 3


    def test_add_is_an_int():
        assert type(add(2, 2)) is int


    def test_parse_age_refuses_negatives():
        with pytest.raises(ValueError, match="negative"):
            parse_age("-1")


    def test_truthy():
        assert add(0, 1)
''')
PLAIN = Q5.model_copy(
    update={
        "expectation": Expectation(tests=TestsExpectation(code=PLAIN_TESTS)),
        "environments": {},
    }
)
WRONG_PLAIN = """
def add(a, b):
    return a - b

def parse_age(text):
    return int(text)
"""
RIGHT_PLAIN = """
def add(a, b):
    return a + b

def parse_age(text):
    age = int(text)
    if age < 0:
        raise ValueError("negative age")
    return age
"""


def grade(run: Runner, challenge: Challenge, code: str, env: str = OLD_ENV) -> Verdict:
    expectation = challenge.expectation_for(env)
    assert expectation is not None
    request = request_for(challenge, code, expectation)
    assert request.learner is not None  # the production recipe isolates hidden tests
    try:
        obs = run.sandbox.run(env, request, Limits(wall_seconds=10))
    finally:
        run.sandbox.drain_removals()
    return compare(challenge.kind, expectation, obs)


def solution(trick: str, base: str = WRONG_PLAIN) -> str:
    return textwrap.dedent(trick).strip() + "\n" + base


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_controls_a_right_solution_passes_and_a_wrong_one_fails(run: Runner, env: str) -> None:
    right = grade(run, PLAIN, RIGHT_PLAIN, env)
    assert right.status is VerdictStatus.PASSED, right.reason
    wrong = grade(run, PLAIN, WRONG_PLAIN, env)
    assert wrong.status is VerdictStatus.FAILED
    assert [t.status for t in wrong.tests] == ["failed", "passed", "failed", "passed"]


FORGERIES = {
    "fake report on the inherited report descriptor, then os._exit(0)": """
        import json, os
        NAMES = __NAMES__
        report = {"mode": "pytest", "pytest_exit_code": 0, "tests": [
            {"nodeid": f"test_hidden.py::{name}", "outcome": "passed"} for name in NAMES]}
        for fd in range(3, 64):
            try:
                os.write(fd, json.dumps(report).encode())
            except OSError:
                pass
        os._exit(0)
    """,
    "a pytest hook registered from the solution that turns failures into passes": """
        import gc, pytest

        class Hook:
            @pytest.hookimpl(hookwrapper=True)
            def pytest_runtest_makereport(self, item, call):
                outcome = yield
                report = outcome.get_result()
                report.outcome, report.longrepr = "passed", None

        for obj in gc.get_objects():
            if type(obj).__name__ == "Config" and hasattr(obj, "pluginmanager"):
                obj.pluginmanager.register(Hook())
    """,
    "conftest.py, pytest.ini, sitecustomize.py and a .pth in every writable directory": """
        import os
        CONFTEST = (
            "import pytest\\n"
            "@pytest.hookimpl(hookwrapper=True)\\n"
            "def pytest_runtest_makereport(item, call):\\n"
            "    o = yield\\n"
            "    o.get_result().outcome = 'passed'\\n"
        )
        DROPS = {
            "conftest.py": CONFTEST,
            "pytest.ini": "[pytest]\\naddopts = -p no:python\\n",
            "sitecustomize.py": "raise SystemExit(0)\\n",
            "x.pth": "import os; os._exit(0)\\n",
        }
        for d in ("/sandbox", "/tmp", "/dev/shm", os.getcwd(), os.path.expanduser("~")):
            for name, text in DROPS.items():
                try:
                    with open(os.path.join(d, name), "w") as f:
                        f.write(text)
                except OSError:
                    pass
    """,
    "monkeypatching unittest, pytest, builtins and assertion rewriting": """
        import builtins, unittest, pytest
        import _pytest.assertion.rewrite as rewrite
        builtins.AssertionError = type("Nope", (Exception,), {})
        unittest.TestCase.run = lambda self, result=None: None
        pytest.fail = lambda *a, **k: None
        pytest.raises = lambda *a, **k: __import__("contextlib").nullcontext()
        rewrite.AssertionRewritingHook.exec_module = lambda self, module: None
    """,
    "poisoning sys.modules for what the tests import later": """
        import sys, types
        fake = types.ModuleType("pytest")
        fake.raises = lambda *a, **k: __import__("contextlib").nullcontext()
        sys.modules["pytest"] = fake
        sys.modules["_pytest"] = fake
    """,
    "killing every process it can reach": """
        import os, signal
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in range(1, 400):
                if pid != os.getpid():
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
    """,
    "flooding every descriptor it holds": """
        import os
        for fd in range(3, 64):
            try:
                os.set_blocking(fd, False)
                for _ in range(2000):
                    os.write(fd, b'{"id": 1, "ok": true, "value": 3}\\n' * 100)
            except OSError:
                pass
    """,
}


def forged(trick: str, names: list[str]) -> str:
    return trick.replace("__NAMES__", repr(tuple(names)))


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forgery_never_passes(run: Runner, name: str) -> None:
    names = ["test_add", "test_add_is_an_int", "test_parse_age_refuses_negatives", "test_truthy"]
    verdict = grade(run, PLAIN, solution(forged(FORGERIES[name], names)))
    assert verdict.status is not VerdictStatus.PASSED, verdict
    assert verdict.score < 1.0


LIARS = """
class Liar(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __hash__(self): return 3
    def __str__(self): return "3"
    def __repr__(self): return "3"
    def __getattr__(self, name): return lambda *a, **k: True

def add(a, b):
    return Liar(a - b)

class Sly(ValueError):
    pass

def parse_age(text):
    return Liar(0)
"""


def test_lying_objects_are_handles_never_equal_data(run: Runner) -> None:
    verdict = grade(run, PLAIN, LIARS)
    assert verdict.status is VerdictStatus.FAILED
    statuses = {t.name: t.status for t in verdict.tests}
    assert statuses["test_add"] == "failed"
    assert statuses["test_add_is_an_int"] == "failed"
    assert statuses["test_parse_age_refuses_negatives"] == "failed"


def test_a_thread_changing_results_after_return_changes_nothing(run: Runner) -> None:
    code = """
import threading, time

def add(a, b):
    result = [a - b]
    def later():
        time.sleep(0.01)
        result[0] = a + b
    threading.Thread(target=later).start()
    return result[0]

def parse_age(text):
    return int(text)
"""
    verdict = grade(run, PLAIN, code)
    assert {t.name: t.status for t in verdict.tests}["test_add"] == "failed"


def test_a_million_element_answer_fails_the_test_not_the_judge(run: Runner) -> None:
    code = """
def add(a, b):
    return list(range(10**6))

def parse_age(text):
    return int(text)
"""
    verdict = grade(run, PLAIN, code)
    assert verdict.status is VerdictStatus.FAILED
    assert {t.name: t.status for t in verdict.tests}["test_add"] == "failed"


def test_the_hidden_tests_and_reference_are_nowhere_the_learner_can_read(run: Runner) -> None:
    """The learner prints every readable file holding the marker or the reference's code."""
    code = (
        f"""
import os
# Built at run time, so that this file itself holds neither needle.
needles = ({MARKER[:7]!r}.encode() + {MARKER[7:]!r}.encode(), b"refuses" + b"_negatives")
found, read = [], 0
# Everything but the kernel's pseudo-files and the image's system tree (the same in every
# container of the image): the work directory, the tmpfs mounts, home, /opt, /etc, /var...
for root in ("/",):
    for here, dirs, files in os.walk(root):
        if here == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
        for name in files:
            path = os.path.join(here, name)
            try:
                with open(path, "rb") as f:
                    data = f.read(1 << 16)
            except OSError:
                continue
            read += 1
            if any(n in data for n in needles):
                found.append(path)
for path in ("/proc/1/cmdline", "/proc/1/environ", "/dev/shm"):
    try:
        with open(path, "rb") as f:
            if any(n in f.read() for n in needles):
                found.append(path)
    except OSError:
        pass
print("READ", read > 100, "FOUND", sorted(set(found)))
"""
        + WRONG_PLAIN
    )
    expectation = PLAIN.expectation_for(OLD_ENV)
    assert expectation is not None
    request = request_for(PLAIN, code, expectation)
    try:
        obs = run.sandbox.run(OLD_ENV, request, Limits(wall_seconds=30))
    finally:
        run.sandbox.drain_removals()
    assert "READ True FOUND []" in obs.stdout.text, (obs.status, obs.stdout.text[-2000:])


def test_q5_without_endpoints_and_a_forged_report_fails(run: Runner) -> None:
    """The issue's own forgery: q5 with no endpoints, a report written and os._exit(0)."""
    trick = FORGERIES["fake report on the inherited report descriptor, then os._exit(0)"]
    tests = Q5.expectation.tests if Q5.expectation else None
    assert tests is not None
    names = [name for name in tests.points]  # q5 gives points to each of its tests
    code = "from fastapi import FastAPI\napp = FastAPI()\n" + textwrap.dedent(forged(trick, names))
    verdict = grade(run, Q5, code)
    assert verdict.status in (VerdictStatus.FAILED, VerdictStatus.ERROR), verdict
    assert verdict.score == 0.0
