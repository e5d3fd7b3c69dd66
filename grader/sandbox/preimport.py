"""Pre-import profiles: which packages a sandbox imports before it is handed a submission.

``full`` pre-imports the environment's packages (and warms pytest up): about 0.8 CPU-seconds
per container here, worth it for every pytest run and every snippet that imports a package.
``bare`` pre-imports nothing: a quarter of that, for scripts that only use the standard
library. ``judge`` is ``full`` in a container started for reuse that only ever runs hidden
tests (an isolated run's judge, restored between runs: docs/security.md, "Reused judges").
``serve`` is ``full`` without pytest and its plugins, nor pytest's warm-up session: for the
learner's side of an isolated run, which answers requests and never runs pytest, when the
learner's files do not import pytest themselves (about 0.26 CPU-s less per container here).
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
    SERVE = "serve"


TEST_TOOLING = frozenset({"pytest", "_pytest", "pytest_asyncio", "pluggy"})
"""What a ``serve`` container leaves out of the environment's pre-imports."""


def modules_for(profile: PreimportProfile, preimport: tuple[str, ...]) -> tuple[str, ...]:
    """The modules a container of ``profile`` imports before it is ready."""
    if profile is PreimportProfile.BARE:
        return ()
    if profile is PreimportProfile.SERVE:
        return tuple(name for name in preimport if name not in TEST_TOOLING)
    return preimport


def learner_profile_for(files: dict[str, str], preimport: tuple[str, ...]) -> PreimportProfile:
    """The profile of an isolated run's learner container, from the learner's imports.

    ``bare`` when they import only the standard library and their own modules, ``full`` when
    they import pytest (a fixture the hidden tests use) or cannot be told, else ``serve``.
    """
    if not preimport:
        return PreimportProfile.BARE
    local = {name.partition("/")[0].removesuffix(".py") for name in files}
    roots: set[str] = set()
    for name, text in files.items():
        if name.endswith(".py"):
            found = imported_roots(text)
            if found is None:
                return PreimportProfile.FULL
            roots |= found
    outside = {root for root in roots if root not in _STDLIB and root not in local}
    if outside & TEST_TOOLING:
        return PreimportProfile.FULL
    return PreimportProfile.SERVE if outside else PreimportProfile.BARE


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
