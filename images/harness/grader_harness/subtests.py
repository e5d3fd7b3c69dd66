"""Variations of a test: unittest's ``subTest`` and pytest's ``subtests``, one result each.

pytest 9 reports every variation itself (a ``SubtestReport`` through
``pytest_runtest_logreport``); pytest 8 without the pytest-subtests plugin does not: a
``subTest`` failure stops the test and the other variations are lost, and there is no
``subtests`` fixture. For pytest 8 this module gives ``TestCaseFunction`` the ``addSubTest``
method unittest looks for, and a ``subtests`` fixture, both reporting the way pytest 9 does,
so that the collector sees the same reports in both environments.

The captured output of a variation is read from pytest's global capture, without consuming
it: what the test printed from the variation's start to its end (``Marks``).
"""

from __future__ import annotations

import contextlib
import time
import unittest
from collections.abc import Generator
from typing import Any

import pytest
from _pytest._io.saferepr import saferepr
from _pytest.reports import TestReport
from _pytest.runner import CallInfo

_BuiltinVariation: Any = None
try:  # pytest >= 9: built in
    from _pytest.subtests import _SubTestContextManager

    _BuiltinVariation = _SubTestContextManager
    BUILTIN = True
except ImportError:  # pragma: no cover - pytest 8
    BUILTIN = False


def description(msg: object, kwargs: dict[str, Any]) -> str:
    """A variation's name as pytest shows it: ``[msg] (i=1, s='a')``, or ``(<subtest>)``."""
    parts = []
    if msg is not None:
        parts.append(f"[{msg}]")
    if kwargs:
        parts.append("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")")
    return " ".join(parts) or "(<subtest>)"


def is_variation(report: object) -> bool:
    """Whether ``report`` is one variation's (pytest 9's ``SubtestReport`` or ours)."""
    context = getattr(report, "context", None)
    return hasattr(context, "kwargs") and hasattr(context, "msg")


def variation_name(report: Any) -> str:
    """The name of a variation report; pytest 9 stores its values already repr'd."""
    try:
        kwargs = dict(report.context.kwargs)
        return description(report.context.msg, {k: str(v) for k, v in kwargs.items()})
    except Exception:
        return "(<subtest>)"


class Marks:
    """Where each variation's output starts, in pytest's global capture of the test."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._starts: list[int] = []
        self._entered: int | None = None
        self._boundary = 0

    def text(self) -> str:
        """What the running test printed so far (stdout), read without consuming it."""
        try:
            capman = self._config.pluginmanager.getplugin("capturemanager")
            tmpfile = capman._global_capturing.out.tmpfile
            value = tmpfile.getvalue()
            return value if type(value) is str else ""
        except Exception:
            return ""

    def test_started(self) -> None:
        self._starts.clear()
        self._entered = None
        self._boundary = len(self.text())

    def start(self) -> None:
        """A ``subTest`` block starts (``stop`` when it ends, after its report)."""
        self._starts.append(len(self.text()))

    def stop(self) -> None:
        if self._starts:
            self._starts.pop()

    def entered(self) -> None:
        """A ``subtests.test()`` block starts (its report ends it)."""
        self._entered = len(self.text())

    def output(self) -> str:
        """The variation's output: from its start (or the last one's end) until now."""
        text = self.text()
        if self._entered is not None:
            start, self._entered = self._entered, None
        else:
            start = self._starts[-1] if self._starts else self._boundary
        self._boundary = len(text)
        return text[start:]


class VariationReport(TestReport):
    """One variation's report, as pytest 9's ``SubtestReport`` (pytest 8 has none)."""

    context: Any


class _Context:
    __slots__ = ("kwargs", "msg")

    def __init__(self, msg: str | None, kwargs: dict[str, Any]) -> None:
        self.msg = msg
        self.kwargs = {k: saferepr(v) for k, v in kwargs.items()}


def report_variation(
    item: pytest.Item, msg: str | None, kwargs: dict[str, Any], call: CallInfo[None]
) -> VariationReport:
    """Make and log one variation's report, as pytest 9 does."""
    report = item.ihook.pytest_runtest_makereport(item=item, call=call)
    variation = VariationReport._from_json(report._to_json())
    variation.context = _Context(msg, kwargs)
    item.ihook.pytest_runtest_logreport(report=variation)
    return variation


def _call(excinfo: Any, start: float, precise: float) -> CallInfo[None]:
    return CallInfo(
        None,
        excinfo,
        start=start,
        stop=time.time(),
        duration=time.perf_counter() - precise,
        when="call",
        _ispytest=True,
    )


def _add_subtest(item: Any, test_case: Any, test: Any, exc_info: Any) -> None:
    """``TestCaseFunction.addSubTest`` for pytest 8: unittest calls it after each variation."""
    from _pytest._code import ExceptionInfo

    excinfo = ExceptionInfo.from_exc_info(exc_info) if exc_info is not None else None
    message = getattr(test, "_message", None)
    msg = None if message is getattr(unittest.case, "_subtest_msg_sentinel", None) else message
    params = dict(getattr(test, "params", {}) or {})
    now = time.time()
    call: CallInfo[None] = CallInfo(
        None, excinfo, start=now, stop=now, duration=0, when="call", _ispytest=True
    )
    report_variation(item, None if msg is None else str(msg), params, call)


class _Variation:
    """``subtests.test(msg, **kwargs)`` for pytest 8: a failure is the variation's only."""

    def __init__(self, request: pytest.FixtureRequest, msg: str | None, kwargs: Any) -> None:
        self._request = request
        self._msg = msg
        self._kwargs = dict(kwargs)
        self._start = 0.0
        self._precise = 0.0

    def __enter__(self) -> None:
        self._start = time.time()
        self._precise = time.perf_counter()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        from _pytest._code import ExceptionInfo

        excinfo = ExceptionInfo.from_exception(exc) if exc is not None else None
        report_variation(
            self._request.node, self._msg, self._kwargs, _call(excinfo, self._start, self._precise)
        )
        if exc is None:
            return False
        return not isinstance(exc, KeyboardInterrupt | pytest.exit.Exception)


class Subtests:
    """The ``subtests`` fixture's object for pytest 8 (pytest 9 has its own)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def test(self, msg: str | None = None, **kwargs: Any) -> _Variation:
        return _Variation(self._request, msg, kwargs)


if not BUILTIN:  # pragma: no cover - pytest 8: this module is then a plugin (``plugins()``)

    @pytest.fixture
    def subtests(request: pytest.FixtureRequest) -> Subtests:
        """Variations inside one test: ``with subtests.test(i=i): ...``."""
        return Subtests(request)


def plugins() -> list[object]:
    """What ``pytest.main`` must register for variations: this module on pytest 8."""
    import sys

    return [] if BUILTIN else [sys.modules[__name__]]


_active: list[Marks] = []


def install(marks: Marks) -> None:
    """Report variations in this process: mark their starts, and fill in what pytest 8 lacks."""
    _active[:] = [marks]
    _wrap_enter(unittest.TestCase, "subTest", context_manager=True)
    if BUILTIN:
        _wrap_enter(_BuiltinVariation, "__enter__", context_manager=False)
        return
    from _pytest.unittest import TestCaseFunction

    if not hasattr(TestCaseFunction, "addSubTest"):
        target: Any = TestCaseFunction
        target.addSubTest = _add_subtest
        target.failfast = False  # unittest reads it after a failed variation
    _wrap_enter(_Variation, "__enter__", context_manager=False)


def _wrap_enter(owner: Any, name: str, *, context_manager: bool) -> None:
    """Mark a variation's start when ``owner.name`` is entered (wrapped once per process)."""
    original = getattr(owner, name)
    if getattr(original, "_grader_marks", False):
        return
    wrapped: Any
    if context_manager:

        @contextlib.contextmanager
        def sub_test(self: Any, *args: Any, **kwargs: Any) -> Generator[None, None, None]:
            for marks in _active:
                marks.start()
            try:
                with original(self, *args, **kwargs):
                    yield
            finally:
                for marks in _active:
                    marks.stop()

        wrapped = sub_test
    else:

        def enter(self: Any) -> Any:
            for marks in _active:
                marks.entered()
            return original(self)

        wrapped = enter
    wrapped._grader_marks = True
    setattr(owner, name, wrapped)
