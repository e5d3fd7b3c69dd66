"""Pre-import profiles: which packages a sandbox imports before it is handed a submission.

``full`` pre-imports the environment's packages (and warms pytest up): about 0.8 CPU-seconds
per container here, worth it for every pytest run and every snippet that imports a package.
``bare`` pre-imports nothing: a quarter of that, for scripts that only use the standard
library. ``judge`` is ``full`` in a container started for reuse that only ever runs hidden
tests (an isolated run's judge, restored between runs: docs/security.md, "Reused judges").
The choice is made on the worker from the snippet's import statements; a snippet
that imports a package some other way still runs, it only pays the import itself. The
source is parsed, never executed, and anything unusual falls back to ``full``.
"""

from __future__ import annotations

import ast
import sys
import warnings
from enum import StrEnum

from ..domain import RunMode, RunRequest


class PreimportProfile(StrEnum):
    """Which packages a sandbox imports before it is handed a submission."""

    FULL = "full"
    BARE = "bare"
    JUDGE = "judge"


_MAX_PARSED_CHARS = 256 * 1024
_STDLIB = frozenset(sys.stdlib_module_names)


def profile_for(request: RunRequest, preimport: tuple[str, ...]) -> PreimportProfile:
    """``bare`` for a script whose files import only the standard library, else ``full``."""
    if request.mode is not RunMode.SCRIPT or not preimport:
        return PreimportProfile.FULL if preimport else PreimportProfile.BARE
    local = {name.partition("/")[0].removesuffix(".py") for name in request.files}
    for name, text in request.files.items():
        if not name.endswith(".py"):
            continue
        roots = imported_roots(text)
        if roots is None or any(root not in _STDLIB and root not in local for root in roots):
            return PreimportProfile.FULL
    return PreimportProfile.BARE


def imported_roots(source: str) -> frozenset[str] | None:
    """The top-level modules a source imports absolutely; None when it cannot be told."""
    if len(source) > _MAX_PARSED_CHARS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning and friends are the harness's
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the harness reports the syntax error; the profile hardly matters
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return frozenset(roots)
