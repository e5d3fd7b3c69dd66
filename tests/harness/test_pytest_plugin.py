"""The child's report of a pytest run and of a script's warnings, from the harness itself.

Each case runs the harness's child functions in a fresh interpreter of this virtualenv
(pytest 9.2 and pytest-asyncio 1.5, as in ``fastapi-0.165-httpx-0.28``), outside Docker; the
same reports from both environment images are checked by ``tests/integration``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "images" / "harness"

DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from grader_harness import child
from grader_harness.warnlog import WarningLog

mode, path, out, filters = sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
files = frozenset([path])
log = WarningLog()
log.install()
if mode == "script":
    code = compile(open(path).read(), path, "exec")
    report, status = child.run_script(code, path, files, [], lambda: None, log, filters)
else:
    report, status = child.run_pytest(path, files, [], lambda: None, log, filters)
with open(out, "w") as handle:
    json.dump({"report": report, "status": status}, handle)
"""


def run_child(
    tmp_path: Path, code: str, mode: str = "pytest", filters: tuple[str, ...] = ()
) -> tuple[dict[str, Any], int]:
    """The child's report and exit status for ``code`` run as the harness would."""
    snippet = tmp_path / ("test_snippet.py" if mode == "pytest" else "main.py")
    snippet.write_text(textwrap.dedent(code))
    out = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            str(HARNESS),
            mode,
            str(snippet),
            str(out),
            json.dumps(list(filters)),
        ],
        cwd=tmp_path,
        # Only the plugins the environment images have: this virtualenv carries others.
        env={
            **os.environ,
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTEST_PLUGINS": "pytest_asyncio.plugin,anyio.pytest_plugin",
        },
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = json.loads(out.read_text())
    return result["report"], result["status"]


OUTCOMES = """
import pytest
import pytest_asyncio


@pytest.mark.skip(reason="not today")
def test_skip():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert 1 == 2


@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass


@pytest.mark.xfail(reason="strict one", strict=True)
def test_xpass_strict():
    pass


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown boom")


def test_teardown(broken_teardown):
    pass


@pytest.fixture
async def plain_async():
    return 1


def test_setup(plain_async):
    pass
"""


def test_outcomes_reasons_phases_and_the_summary(tmp_path: Path) -> None:
    """Skip and xfail reasons, strict xpass, setup and teardown errors, pytest's own counts."""
    report, status = run_child(tmp_path, OUTCOMES)
    tests = {
        t["nodeid"].split("::")[1]: (t["outcome"], t["when"], t["message"]) for t in report["tests"]
    }
    assert tests["test_skip"] == ("skipped", "setup", "not today")
    assert tests["test_xfail"] == ("xfailed", "call", "known bug")
    assert tests["test_xpass"] == ("xpassed", "call", "fixed already")
    assert tests["test_xpass_strict"] == ("failed", "call", "[XPASS(strict)] strict one")
    assert tests["test_teardown"] == ("error", "teardown", "RuntimeError: teardown boom")
    outcome, when, message = tests["test_setup"]
    assert (outcome, when) == ("error", "setup")
    assert message.startswith("Failed: 'test_setup' requested an async fixture 'plain_async'")
    xfailed = next(t for t in report["tests"] if t["nodeid"].endswith("test_xfail"))
    assert (xfailed["exception"]["type"], xfailed["exception"]["line"]) == ("AssertionError", 13)
    assert report["summary"] == {
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "failed": 1,
        "passed": 1,
        "error": 2,
    }
    assert status == 1


NEVER_AWAITED = """
import asyncio

import pytest


async def record():
    await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_records():
    record()
"""


def test_warnings_caught_by_pytest_are_data(tmp_path: Path) -> None:
    """A never-awaited coroutine is reported with its category, message, line and test."""
    report, status = run_child(tmp_path, NEVER_AWAITED)
    assert report["warnings"] == [
        {
            "category": "RuntimeWarning",
            "message": "coroutine 'record' was never awaited",
            "line": 13,
            "file": "test_snippet.py",
            "when": "runtest",
            "nodeid": "test_snippet.py::test_records",
        }
    ]
    assert report["summary"] == {"passed": 1, "warnings": 1}
    assert status == 0


def test_warnings_escalated_to_errors_fail_the_test(tmp_path: Path) -> None:
    """With ``-W error`` the unraisable warning fails the test; harness artefacts do not."""
    report, status = run_child(tmp_path, NEVER_AWAITED, filters=("error",))
    (test,) = report["tests"]
    assert test["outcome"] == "failed"
    assert "Exception ignored in: <coroutine object record at" in test["message"]
    assert report["summary"] == {"failed": 1}
    assert report["warnings"] == []
    assert status == 1


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        ("import no_such_module\n", ("ModuleNotFoundError", "No module named 'no_such_module'", 1)),
        (
            "import pytest\n\n@pytest.mark.parametrize('x', [1])\ndef test_a(y):\n    pass\n",
            ("Failed", "In test_a: function uses no argument 'x'", None),
        ),
        ("raise TypeError('at import')\n", ("TypeError", "at import", 1)),
    ],
)
def test_a_collection_error_carries_the_error_behind_it(
    tmp_path: Path, code: str, exception: tuple[str, str, int | None]
) -> None:
    """pytest's wrapper is unwrapped to the import error; its own failures keep their type."""
    report, status = run_child(tmp_path, code)
    (error,) = report["collection_errors"]
    found = error["exception"]
    assert (found["type"].rsplit(".", 1)[-1], found["message"], found["line"]) in (
        exception,
        (exception[0], exception[1].replace("In test_a", "In test_snippet.py::test_a"), None),
    )
    assert report["summary"] == {"error": 1}
    assert status == 2


def test_a_scripts_warnings_are_logged_and_still_printed(tmp_path: Path) -> None:
    """Script mode logs what Python shows; ``-W error`` turns a warning into the exception."""
    code = """
    import warnings


    async def ping():
        return "pong"


    ping()
    warnings.warn("old API", DeprecationWarning)
    """
    report, status = run_child(tmp_path, code, mode="script")
    assert [(w["category"], w["message"], w["line"]) for w in report["warnings"]] == [
        ("RuntimeWarning", "coroutine 'ping' was never awaited", 9),
        ("DeprecationWarning", "old API", 10),
    ]
    assert status == 0
    escalated, status = run_child(
        tmp_path, code, mode="script", filters=("error::DeprecationWarning",)
    )
    assert escalated["exception"]["type"] == "DeprecationWarning"
    assert status == 1
