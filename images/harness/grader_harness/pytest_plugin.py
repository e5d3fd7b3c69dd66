"""A pytest plugin that records each test's outcome as data, in the child process."""

from __future__ import annotations

import io
import os
import traceback
from collections.abc import Generator
from typing import Any

import pytest

from .child import clip, describe_exception, safe_str
from .protocol import (
    MAX_MESSAGE_CHARS,
    MAX_TEST_OUTPUT_CHARS,
    MAX_TESTS,
    MAX_TRACEBACK_CHARS,
    PYTEST_SESSION_OPTIONS,
)


def pytest_args(path: str, rootdir: str) -> list[str]:
    """The one command line for a pytest run: the snippet's, and the supervisor's warm-up.

    They must match, or the warm-up loads other plugins and settings than the run uses.
    """
    return [
        path,
        *PYTEST_SESSION_OPTIONS,
        "-p",
        "no:terminal",
        "--capture=tee-sys",
        "--rootdir",
        rootdir,
    ]


class _QuietReporter:
    """Stands in for pytest's terminal reporter (disabled so it cannot write to stdout).

    Assertion rewriting asks the config for the terminal writer to build its messages
    (``assert 200 == 201``); this gives it one that writes into memory.
    """

    verbosity = 0
    isatty = False
    hasmarkup = False

    def __init__(self, config: pytest.Config) -> None:
        from _pytest._io import TerminalWriter

        self.config = config
        self._tw = TerminalWriter(file=io.StringIO())
        self._tw.hasmarkup = False

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class QuietTerminal:
    """Registers the quiet reporter when the real one is switched off."""

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        if config.pluginmanager.get_plugin("terminalreporter") is None:
            config.pluginmanager.register(_QuietReporter(config), "terminalreporter")


class Collector:
    """Collects per-test outcomes, collection errors and the snippet module's namespace."""

    def __init__(self, snippet_files: frozenset[str], entry_path: str) -> None:
        self._snippet_files = snippet_files
        self._entry_path = entry_path
        self._tests: dict[str, dict[str, Any]] = {}
        self._module_ns: dict[str, Any] | None = None
        self.collection_errors: list[dict[str, Any]] = []

    # pytest hooks -----------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        excinfo = call.excinfo
        if excinfo is not None and report.failed and item.nodeid in self._tests:
            entry = self._tests[item.nodeid]
            if entry.get("exception") is None:
                entry["exception"] = describe_exception(excinfo.value, self._snippet_files)

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        if len(self._tests) >= MAX_TESTS:
            return
        self._tests[item.nodeid] = {
            "nodeid": item.nodeid,
            "outcome": "not_run",
            "message": None,
            "duration": 0.0,
            "stdout": "",
            "stderr": "",
            "exception": None,
        }
        module = getattr(item, "module", None)
        if (
            self._module_ns is None
            and module is not None
            and (os.path.abspath(str(getattr(module, "__file__", ""))) == self._entry_path)
        ):
            self._module_ns = module.__dict__

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(
                {
                    "nodeid": report.nodeid,
                    "message": clip(
                        safe_str(report.longreprtext, MAX_TRACEBACK_CHARS), MAX_TRACEBACK_CHARS
                    ),
                }
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self._tests.get(report.nodeid)
        if entry is None:
            return
        entry["duration"] = round(entry["duration"] + float(report.duration), 6)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            entry["outcome"] = _outcome(report)
            entry["message"] = _message(report)
        elif report.when == "teardown" and report.failed and entry["outcome"] == "passed":
            entry["outcome"] = "error"
            entry["message"] = _message(report)
        if report.when in ("call", "teardown") or not report.passed:
            entry["stdout"] = clip(report.capstdout, MAX_TEST_OUTPUT_CHARS)
            entry["stderr"] = clip(report.capstderr, MAX_TEST_OUTPUT_CHARS)

    # results ----------------------------------------------------------------------------

    def tests(self) -> list[dict[str, Any]]:
        return list(self._tests.values())

    def namespace(self) -> dict[str, Any] | None:
        return self._module_ns


def _outcome(report: pytest.TestReport) -> str:
    wasxfail = hasattr(report, "wasxfail")
    if report.when == "setup" and report.failed:
        return "error"
    if report.passed:
        return "xpassed" if wasxfail else "passed"
    if report.skipped:
        return "xfailed" if wasxfail else "skipped"
    return "failed"


def _message(report: pytest.TestReport) -> str | None:
    if report.passed:
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return safe_str(longrepr[2], MAX_MESSAGE_CHARS)
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return safe_str(crash.message, MAX_MESSAGE_CHARS)
    try:
        text = report.longreprtext
    except Exception:
        text = traceback.format_exc()
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    return clip(lines[-1][1:].strip() if lines else text.strip(), MAX_MESSAGE_CHARS)
