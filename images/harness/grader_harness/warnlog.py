"""Warnings of a run: the challenge's ``-W`` filters, and a log of every warning shown.

The filters arrive in the run's options file, which the worker lays out next to the snippet
(``OPTIONS_FILE``) and the child reads and removes before any snippet code runs. The log is
filled by a ``warnings.showwarning`` wrapper (script mode, and anything pytest does not catch)
and by pytest's ``pytest_warning_recorded`` hook; the child describes it in its report. Like
everything the child reports, the log is a claim of the snippet's process.

Stdlib only, imported before the fork; what only filters need is imported when they are used.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import warnings

TYPE_CHECKING = False  # typing costs the container's start-up ~6 ms; only the checker needs it
if TYPE_CHECKING:
    from typing import Any

OPTIONS_FILE = ".grader-run.json"
MAX_OPTIONS_BYTES = 16 * 1024
MAX_WARNINGS = 100
ACTIONS = ("default", "error", "ignore", "always", "module", "once")


def take_options(workdir: str) -> dict[str, Any]:
    """Read the run's options and remove the file, so the snippet never sees it.

    A missing or malformed file means no options: the worker wrote it, so malformed is a bug
    of ours, and running without the options is visible in the outcome.
    """
    path = os.path.join(workdir, OPTIONS_FILE)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_OPTIONS_BYTES + 1)
        os.unlink(path)
        value = json.loads(data) if len(data) <= MAX_OPTIONS_BYTES else None
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def filter_specs(options: dict[str, Any]) -> list[str]:
    """The ``-W`` options among the run's options (strings only)."""
    specs = options.get("filterwarnings")
    if not isinstance(specs, list):
        return []
    return [spec for spec in specs if isinstance(spec, str)]


def apply_filters(specs: list[str]) -> None:
    """Apply ``-W`` options to this process in order, later ones winning, as ``python -W``.

    A filter that cannot be applied (an unknown category) is skipped with a line on stderr,
    as Python does for a bad ``-W`` (not a warning: an earlier ``error`` would raise it).
    """
    for spec in specs:
        try:
            action, message, category, module, lineno = parse_filter(spec)
        except Exception as exc:  # a category's module may fail to import in any way
            print(f"Invalid -W option ignored: {exc}", file=sys.stderr)
            continue
        warnings.filterwarnings(action, message, category, module, lineno)  # type: ignore[arg-type]


def parse_filter(spec: str) -> tuple[str, str, type[Warning], str, int]:
    """``action:message:category:module:lineno`` (trailing parts optional), as ``python -W``.

    As there, the message and the module are literal texts (the message a prefix of the
    warning's, case-insensitive; the module the whole module name), not regular expressions.
    """
    import importlib  # here: only runs with filters pay for these
    import re

    parts = [part.strip() for part in spec.split(":")]
    if len(parts) > 5:
        raise ValueError(f"too many fields in {spec!r}")
    action, message, category_name, module, line = (parts + [""] * 5)[:5]
    matches = [a for a in ACTIONS if a.startswith(action)] if action else ["default"]
    if len(matches) != 1:
        raise ValueError(f"bad action in {spec!r}")
    category: type[Warning] = Warning
    if category_name:
        module_name, _, attr = category_name.rpartition(".")
        found = getattr(importlib.import_module(module_name) if module_name else builtins, attr)
        if not (isinstance(found, type) and issubclass(found, Warning)):
            raise ValueError(f"{category_name!r} is not a Warning class")
        category = found
    lineno = int(line) if line else 0
    if lineno < 0:
        raise ValueError(f"negative line number in {spec!r}")
    module = re.escape(module) + r"\Z" if module else ""
    return matches[0], re.escape(message), category, module, lineno


class WarningLog:
    """Every warning shown during the run: the first ``MAX_WARNINGS`` kept, all counted.

    Entries are ``(message, category, filename, lineno, when, nodeid)`` as the warnings
    machinery gave them; the child turns them into data when it writes its report.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any, Any, Any, str | None, str | None]] = []
        self.total = 0
        self._original: Any = None

    def add(
        self,
        message: Any,
        category: Any,
        filename: Any,
        lineno: Any,
        when: str | None = None,
        nodeid: str | None = None,
    ) -> None:
        self.total += 1
        if len(self.entries) < MAX_WARNINGS:
            self.entries.append((message, category, filename, lineno, when, nodeid))

    def install(self) -> None:
        """Log each warning Python shows, then show it as before (on stderr)."""
        original = warnings.showwarning
        self._original = original

        def showwarning(
            message: Any,
            category: Any,
            filename: Any,
            lineno: Any,
            file: Any = None,
            line: Any = None,
        ) -> None:
            self.add(message, category, filename, lineno)
            original(message, category, filename, lineno, file, line)

        warnings.showwarning = showwarning
