"""A pytest plugin that records each test's outcome as data, in the child process.

What it records is what pytest itself would have shown: per test the outcome, the phase that
decided it, the skip or xfail reason or the failure message; the collection errors with the
exception behind each; the warnings pytest caught; and the summary counts, taken from pytest's
own ``pytest_report_teststatus`` hook as its terminal reporter does.
"""

from __future__ import annotations

import io
import os
import traceback
from collections.abc import Generator, Iterable
from typing import Any

import pytest

from . import subtests as variations
from .child import clip, describe_exception, safe_str
from .protocol import (
    MAX_MESSAGE_CHARS,
    MAX_SUBTEST_OUTPUT_CHARS,
    MAX_SUBTESTS,
    MAX_TEST_OUTPUT_CHARS,
    MAX_TESTS,
    MAX_TRACEBACK_CHARS,
    PYTEST_SESSION_OPTIONS,
)
from .warnlog import WarningLog

# The supervisor imports pytest-asyncio and anyio before the fork to start the child warm, so
# pytest says it cannot rewrite their asserts: a plain ``pytest`` run would not, the snippet
# did nothing, and under a challenge's ``-W error`` it would stop the session. Ignored last,
# so it wins over the challenge's filters. (No snippet code runs before pytest's configuration,
# so no snippet module can be the subject of this warning.)
PREIMPORT_ARTEFACT = (
    "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
)


TASK_MARKER = "task(taskno): the task of the exercise this test checks (an integer)"


def pytest_args(
    path: str, rootdir: str, filters: Iterable[str] = (), paths: Iterable[str] = ()
) -> list[str]:
    """The one command line for a pytest run: the snippet's, and the supervisor's warm-up.

    They must match, or the warm-up loads other plugins and settings than the run uses.
    ``filters`` (a challenge's ``-W`` options) come after the session's own, so they win.
    ``paths``, when given, are the test files to run instead of ``path`` (several hidden files).
    """
    return [
        *(list(paths) or [path]),
        *PYTEST_SESSION_OPTIONS,
        *[arg for spec in filters for arg in ("-W", spec)],
        "-W",
        PREIMPORT_ARTEFACT,
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
    """Collects per-test outcomes (with their variations and task numbers), collection
    errors, warnings, pytest's summary counts and the snippet module's namespace."""

    def __init__(
        self, snippet_files: frozenset[str], entry_path: str, log: WarningLog | None = None
    ) -> None:
        self._snippet_files = snippet_files
        self._entry_path = entry_path
        self._log = log if log is not None else WarningLog()
        self._tests: dict[str, dict[str, Any]] = {}
        self._module_ns: dict[str, Any] | None = None
        self._config: pytest.Config | None = None
        self._summary: dict[str, int] = {}
        self._collect_exceptions: dict[str, dict[str, Any]] = {}
        self.collection_errors: list[dict[str, Any]] = []
        self._marks: variations.Marks | None = None
        self._calling: str | None = None
        self._failed_variations: dict[str, int] = {}

    # pytest hooks -----------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        self._config = config
        config.addinivalue_line("markers", TASK_MARKER)
        self._marks = variations.Marks(config)
        variations.install(self._marks)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_load_initial_conftests(self) -> Generator[None, Any, None]:
        """A conftest that fails to import (it imports the solution, say) is a collection error."""
        outcome = yield
        exc = outcome.excinfo[1] if outcome.excinfo else None
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            path = os.path.basename(str(getattr(exc, "path", "conftest.py")))
            self.collection_errors.append(
                {
                    "nodeid": path,
                    "message": clip(safe_str(cause, MAX_TRACEBACK_CHARS), MAX_TRACEBACK_CHARS),
                    "exception": describe_exception(cause, self._snippet_files),
                }
            )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        self._calling = item.nodeid
        if self._marks is not None:
            self._marks.test_started()
        try:
            yield
        finally:
            self._calling = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        failed = self._failed_variations.get(item.nodeid, 0)
        final = call.when == "call" and self._calling != item.nodeid
        if final and failed and report.passed and not hasattr(report, "wasxfail"):
            # A test passes only if every variation did (pytest 9 does not fail a unittest
            # test whose subTest failed; pytest 8 never saw the variation).
            report.outcome = "failed"
            report.longrepr = f"contains {failed} failed subtest{'s' if failed > 1 else ''}"
        excinfo = call.excinfo
        raised = report.failed or (report.skipped and hasattr(report, "wasxfail"))
        if excinfo is not None and raised and item.nodeid in self._tests:
            entry = self._tests[item.nodeid]
            if entry.get("exception") is None:
                entry["exception"] = describe_exception(excinfo.value, self._snippet_files)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        """Keep the exception behind a failed collection (pytest drops its CallInfo later)."""
        outcome = yield
        report = outcome.get_result()
        excinfo = getattr(getattr(report, "call", None), "excinfo", None)
        if report.failed and excinfo is not None and len(self._collect_exceptions) < 100:
            self._collect_exceptions[report.nodeid] = describe_exception(
                _behind(excinfo.value), self._snippet_files
            )

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: Any
    ) -> None:
        self._count("warnings")
        self._log.add(
            warning_message.message,
            warning_message.category,
            warning_message.filename,
            warning_message.lineno,
            when,
            nodeid,
        )

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        if len(self._tests) >= MAX_TESTS:
            return
        self._tests[item.nodeid] = {
            "nodeid": item.nodeid,
            "outcome": "not_run",
            "message": None,
            "when": None,
            "duration": 0.0,
            "stdout": "",
            "stderr": "",
            "exception": None,
            "subtests": [],
            "task_id": _task_id(item),
        }
        module = getattr(item, "module", None)
        if (
            self._module_ns is None
            and module is not None
            and (os.path.abspath(str(getattr(module, "__file__", ""))) == self._entry_path)
        ):
            self._module_ns = module.__dict__

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:  # a module skipped as a whole (allow_module_level=True)
            self._count("skipped")
        if not report.failed:
            return
        self._count("error")
        if len(self.collection_errors) >= 100:
            return
        self.collection_errors.append(
            {
                "nodeid": report.nodeid,
                "message": clip(
                    safe_str(report.longreprtext, MAX_TRACEBACK_CHARS), MAX_TRACEBACK_CHARS
                ),
                "exception": self._collect_exceptions.get(report.nodeid),
            }
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if variations.is_variation(report):
            self._variation(report)
            return
        self._count(self._category(report))
        entry = self._tests.get(report.nodeid)
        if entry is None:
            return
        entry["duration"] = round(entry["duration"] + float(report.duration), 6)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            entry["outcome"] = _outcome(report)
            entry["message"] = _message(report)
            entry["when"] = report.when
        elif report.when == "teardown" and report.failed and entry["outcome"] == "passed":
            entry["outcome"] = "error"
            entry["message"] = _message(report)
            entry["when"] = "teardown"
        if report.when in ("call", "teardown") or not report.passed:
            entry["stdout"] = clip(report.capstdout, MAX_TEST_OUTPUT_CHARS)
            entry["stderr"] = clip(report.capstderr, MAX_TEST_OUTPUT_CHARS)

    def _variation(self, report: pytest.TestReport) -> None:
        """One variation of a test: counted as pytest 9 counts it, kept under its test."""
        output = self._marks.output() if self._marks is not None else ""
        outcome = _outcome(report)
        if report.failed:
            self._count("failed")
            nodeid = report.nodeid
            self._failed_variations[nodeid] = self._failed_variations.get(nodeid, 0) + 1
        elif report.skipped and not hasattr(report, "wasxfail"):
            self._count("skipped")
        entry = self._tests.get(report.nodeid)
        if entry is None or len(entry["subtests"]) >= MAX_SUBTESTS:
            return
        entry["subtests"].append(
            {
                "name": safe_str(variations.variation_name(report), MAX_MESSAGE_CHARS),
                "outcome": outcome,
                "message": _message(report),
                "stdout": clip(output, MAX_SUBTEST_OUTPUT_CHARS),
            }
        )

    # results ----------------------------------------------------------------------------

    def tests(self) -> list[dict[str, Any]]:
        return list(self._tests.values())

    def summary(self) -> dict[str, int]:
        """Pytest's summary counts: ``{"failed": 1, "passed": 2, "warnings": 1}``."""
        return dict(self._summary)

    def _category(self, report: pytest.TestReport) -> str:
        """The summary category pytest's terminal reporter files this report under.

        The plugins' ``pytest_report_teststatus`` answer first (xfailed, xpassed, errors in
        setup and teardown); the terminal plugin's own last-resort answer, switched off with
        it, is repeated here: the report's outcome, a failure outside the call being an error.
        """
        if self._config is None or not getattr(report, "count_towards_summary", True):
            return ""
        status = self._config.hook.pytest_report_teststatus(report=report, config=self._config)
        if isinstance(status, tuple | list) and status:
            return status[0] if isinstance(status[0], str) else ""
        if report.failed and report.when != "call":
            return "error"
        return str(report.outcome)

    def _count(self, category: str) -> None:
        if category and (category in self._summary or len(self._summary) < 20):
            self._summary[category] = self._summary.get(category, 0) + 1

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


def _task_id(item: pytest.Item) -> int | None:
    """``@pytest.mark.task(taskno=N)`` (or ``task(N)``) on the test, its class or module."""
    marker = item.get_closest_marker("task")
    if marker is None:
        return None
    taskno = marker.kwargs.get("taskno", marker.args[0] if marker.args else None)
    return taskno if type(taskno) is int and 0 <= taskno < 1_000_000 else None


def _behind(exc: BaseException) -> BaseException:
    """The error behind pytest's ``CollectError`` (the ``ImportError`` it wraps), if any.

    pytest's own outcomes (``skip`` at module level, say) derive from ``BaseException``
    only; for those the wrapper's message is the clearer one.
    """
    cause = exc.__cause__
    if isinstance(exc, pytest.Collector.CollectError) and isinstance(cause, Exception):
        return cause
    return exc


def _message(report: pytest.TestReport) -> str | None:
    """The reason or message pytest shows for the outcome (its short test summary's text)."""
    if hasattr(report, "wasxfail"):  # xfailed, xpassed: the xfail reason
        return safe_str(report.wasxfail, MAX_MESSAGE_CHARS)
    if report.passed:
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        reason = safe_str(longrepr[2], MAX_MESSAGE_CHARS)
        return reason.removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return safe_str(crash.message, MAX_MESSAGE_CHARS)
    try:
        text = report.longreprtext
    except Exception:
        text = traceback.format_exc()
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    return clip(lines[-1][1:].strip() if lines else text.strip(), MAX_MESSAGE_CHARS)
