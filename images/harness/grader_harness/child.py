"""The forked child: runs the snippet, then writes its claims to the supervisor.

Everything here shares a process with the snippet, so the supervisor and the worker treat what
it writes as the snippet's own claims: useful observations, never proof (see docs/harness.md).
The references below are bound before any snippet code runs so that casual monkeypatching of
``os``, ``json`` or ``sys`` does not redirect the report.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import traceback
import types

from .jsonstate import Unserializable, to_plain, type_name
from .protocol import (
    CHILD_INTERNAL_ERROR,
    MAX_CHILD_REPORT_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_STATE_JSON_CHARS,
    MAX_TRACEBACK_CHARS,
)
from .warnlog import WarningLog, apply_filters, filter_specs, take_options

# typing costs the container's start-up ~6 ms; annotations only need it for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_write = os.write
_exit = os._exit
_dumps = json.dumps


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more]"


def safe_str(value: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``str(value)`` that survives hostile ``__str__`` methods."""
    try:
        text = str(value)
        if type(text) is not str:
            return "<__str__ returned a non-string>"
        return clip(text, limit)
    except BaseException as exc:  # a hostile __str__ may raise anything
        return f"<unprintable: {type(exc).__name__}>"


def describe_exception(exc: BaseException, snippet_files: frozenset[str]) -> dict[str, Any]:
    """Type, message, line in the snippet and a traceback trimmed to the snippet's frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in snippet_files]
    info: dict[str, Any] = {
        "type": type_name(type(exc)),
        "message": safe_str(exc),
        "line": frames[-1].lineno if frames else None,
        "file": os.path.basename(frames[-1].filename) if frames else None,
        "traceback": clip("".join(traceback.format_list(frames)), MAX_TRACEBACK_CHARS),
    }
    if isinstance(exc, SystemExit):
        code = exc.code
        if isinstance(code, bool):  # CPython treats True/False as the integers 1/0
            code = int(code)
        info["exit_code"] = code if code is None or type(code) is int else safe_str(code, 200)
    return info


def describe_warnings(log: WarningLog, snippet_files: frozenset[str]) -> list[dict[str, Any]]:
    """The logged warnings as data: category, message, and the line when it is the snippet's."""
    described = []
    for message, category, filename, lineno, when, nodeid in log.entries:
        in_snippet = isinstance(filename, str) and filename in snippet_files
        described.append(
            {
                "category": _type_of(category),
                "message": safe_str(message),
                "line": lineno if in_snippet and type(lineno) is int else None,
                "file": os.path.basename(filename) if in_snippet else None,
                "when": when,
                "nodeid": nodeid if type(nodeid) is str else None,
            }
        )
    return described


def _type_of(category: object) -> str:
    try:
        return type_name(category) if isinstance(category, type) else safe_str(category, 200)
    except BaseException:
        return "?"


def collect_state(namespace: dict[str, Any] | None, names: list[str]) -> dict[str, Any]:
    """Each requested name's value as plain JSON, or why it has none."""
    out: dict[str, Any] = {}
    for name in names:
        if namespace is None or name not in namespace:
            out[name] = {"status": "missing"}
            continue
        value = namespace[name]
        try:
            plain = to_plain(value)
            encoded = _dumps(plain)
        except Unserializable as exc:
            out[name] = {"status": "unserializable", "reason": safe_str(exc), "type": _tn(value)}
            continue
        except BaseException as exc:
            out[name] = {"status": "unserializable", "reason": safe_str(exc), "type": _tn(value)}
            continue
        if len(encoded) > MAX_STATE_JSON_CHARS:
            out[name] = {
                "status": "unserializable",
                "reason": "value too large",
                "type": _tn(value),
            }
            continue
        out[name] = {"status": "ok", "value": plain}
    return out


def _tn(value: object) -> str:
    try:
        return type_name(type(value))
    except BaseException:
        return "?"


def send_report(fd: int, report: dict[str, Any]) -> None:
    """Write the child report on its pipe, capped, then close it."""
    data = _dumps(report).encode("utf-8", "replace")
    if len(data) > MAX_CHILD_REPORT_BYTES:
        data = _dumps({"mode": report.get("mode"), "error": "child report too large"}).encode()
    view = memoryview(data)
    while view:
        written = _write(fd, view)
        view = view[written:]
    os.close(fd)


def run_script(
    code: types.CodeType,
    path: str,
    snippet_files: frozenset[str],
    state: list[str],
    flush: Callable[[], None],
    log: WarningLog | None = None,
    filters: list[str] | None = None,
) -> tuple[dict[str, Any], int]:
    """Execute ``code`` as ``__main__``; return the child report and the process exit code."""
    log = log or WarningLog()
    apply_filters(filters or [])
    module = types.ModuleType("__main__")
    module.__dict__.update({"__file__": path, "__builtins__": builtins, "__cached__": None})
    sys.modules["__main__"] = module
    namespace = module.__dict__
    exception: dict[str, Any] | None = None
    exit_code = 0
    try:
        exec(code, namespace)
    except BaseException as exc:  # the snippet's failure is data, whatever it is
        exception = describe_exception(exc, snippet_files)
        exit_code = _exit_code_for(exc)
        flush()
        if not isinstance(exc, SystemExit):
            _print_traceback(exception)
        elif exit_code and exception.get("exit_code") is not None and not isinstance(exc.code, int):
            _print_stderr(f"{exception['exit_code']}\n")
    flush()
    return {
        "mode": "script",
        "exception": exception,
        "state": collect_state(namespace, state),
        "warnings": describe_warnings(log, snippet_files),
    }, exit_code


def _print_traceback(exception: dict[str, Any]) -> None:
    """Write the trimmed traceback to fd 2, as ``python main.py`` would."""
    header = "Traceback (most recent call last):\n" if exception["traceback"] else ""
    message = exception["message"]
    last = f"{exception['type']}: {message}" if message else exception["type"]
    _print_stderr(f"{header}{exception['traceback']}{last}\n")


def _print_stderr(text: str) -> None:
    data = text.encode("utf-8", "backslashreplace")
    try:
        while data:
            data = data[_write(2, data) :]
    except OSError:
        pass


def _exit_code_for(exc: BaseException) -> int:
    """The exit status CPython itself would have used for this uncaught exception."""
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):  # bool included, as in CPython
            return int(code) & 0xFF
        return 1
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 1


def option_paths(options: dict[str, Any], workdir: str) -> list[str]:
    """The test files the run's options name (several hidden files), as paths; else none."""
    names = options.get("paths")
    if not isinstance(names, list) or len(names) > 100:
        return []
    paths = []
    for name in names:
        if type(name) is not str or not name or "/" in name or name.startswith("."):
            return []
        paths.append(os.path.join(workdir, name))
    return paths


def run_pytest(
    path: str,
    snippet_files: frozenset[str],
    state: list[str],
    flush: Callable[[], None],
    log: WarningLog | None = None,
    filters: list[str] | None = None,
    paths: list[str] | None = None,
) -> tuple[dict[str, Any], int]:
    """Run pytest on the snippet file (or on ``paths``) with the environment's own plugins.

    ``filters`` go to pytest as ``-W`` options, after the session's own, so they win.
    """
    import pytest

    from . import subtests
    from .pytest_plugin import Collector, QuietTerminal, pytest_args

    log = log or WarningLog()
    collector = Collector(snippet_files, path, log)
    args = pytest_args(path, os.path.dirname(path), filters or [], paths or [])
    plugins = [collector, QuietTerminal(), *subtests.plugins()]
    exception: dict[str, Any] | None = None
    exit_code = 0
    try:
        exit_code = int(pytest.main(args, plugins=plugins))
    except BaseException as exc:  # a snippet can raise SystemExit at import time, say
        exception = describe_exception(exc, snippet_files)
        exit_code = _exit_code_for(exc)
    flush()
    report: dict[str, Any] = {
        "mode": "pytest",
        "exception": exception,
        "pytest_exit_code": exit_code,
        "tests": collector.tests(),
        "collection_errors": collector.collection_errors,
        "summary": collector.summary(),
        "state": collect_state(collector.namespace(), state),
        "warnings": describe_warnings(log, snippet_files),
    }
    return report, exit_code


CALL_TIMEOUT_SECONDS = 3600.0


def run_serve(
    channel: tuple[int, int], modules: list[str], flush: Callable[[], None]
) -> tuple[dict[str, Any], int]:
    """Answer the judge's requests on the learner's modules until the channel ends."""
    from .rpc.channel import Channel
    from .rpc.serve import serve

    serve(Channel(*channel), modules)
    flush()
    return {"mode": "serve"}, 0


def run_judge(
    channel: tuple[int, int],
    modules: list[str],
    path: str,
    snippet_files: frozenset[str],
    flush: Callable[[], None],
    log: WarningLog,
    filters: list[str],
    paths: list[str],
) -> tuple[dict[str, Any], int]:
    """Run the hidden tests here, with the learner's modules answered from the other side."""
    from .rpc.channel import Channel
    from .rpc.remote import RemoteSession

    # No deadline per call: a learner stuck in one is killed at its own wall limit, which
    # ends the channel, and the judge's supervisor has the last word on time anyway.
    session = RemoteSession(Channel(*channel), modules, call_timeout=CALL_TIMEOUT_SECONDS)
    session.install()
    try:
        report, exit_code = run_pytest(path, snippet_files, [], flush, log, filters, paths)
    finally:
        session.close()
    report["mode"] = "judge"
    return report, exit_code


def main(
    mode: str,
    path: str,
    code: types.CodeType | None,
    snippet_files: frozenset[str],
    state: list[str],
    report_fd: int,
    channel: tuple[int, int] | None = None,
    modules: list[str] | None = None,
) -> None:
    """Entry point in the forked child; never returns.

    ``channel`` (read and write descriptors) and ``modules`` serve the isolated modes: a
    ``serve`` child answers the judge's requests on the learner's modules until the channel
    ends; a ``judge`` child runs pytest with those modules standing in for the learner's.
    """
    out, err = sys.stdout, sys.stderr
    pid = os.getpid()

    def flush() -> None:
        for stream in (out, err):
            try:
                stream.flush()
            except BaseException:  # a closed or replaced stream must not stop the report
                pass

    try:
        options = take_options(os.path.dirname(path))
        filters = filter_specs(options)
        log = WarningLog()
        log.install()
        if mode == "script" and code is not None:
            report, exit_code = run_script(code, path, snippet_files, state, flush, log, filters)
        elif mode == "serve" and channel is not None:
            report, exit_code = run_serve(channel, modules or [], flush)
        elif mode == "judge" and channel is not None:
            paths = option_paths(options, os.path.dirname(path))
            report, exit_code = run_judge(
                channel, modules or [], path, snippet_files, flush, log, filters, paths
            )
        else:
            paths = option_paths(options, os.path.dirname(path))
            report, exit_code = run_pytest(path, snippet_files, state, flush, log, filters, paths)
        if os.getpid() == pid:  # a bare os.fork() clone of the snippet returns here too
            send_report(report_fd, report)
    except BaseException:
        flush()
        _exit(CHILD_INTERNAL_ERROR)
    # Skip interpreter shutdown: atexit hooks and non-daemon threads belong to the snippet
    # and the supervisor kills whatever is left anyway.
    _exit(exit_code)
