"""Rebuilding learner exceptions judge-side from forged descriptions (no learner needed)."""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "images" / "harness"))

from grader_harness.rpc.errors import RemoteError, import_error_text, rebuild_exception


def described(module: str, qualname: str, **extra: Any) -> dict[str, Any]:
    return {"type": qualname, "module": module, "message": "m", **extra}


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("_pytest.outcomes", "Skipped"),
        ("_pytest.outcomes", "Failed"),
        ("unittest.case", "SkipTest"),
        ("builtins", "SystemExit"),
        ("builtins", "KeyboardInterrupt"),
        ("builtins", "GeneratorExit"),
        ("grader_harness.rpc.endpoint", "ProtocolError"),
        ("solution", "ValueError"),
        ("builtins", "object"),
        ("os", "path"),
    ],
)
def test_forged_exception_types_become_remote_errors(module: str, qualname: str) -> None:
    """Claims of test-machinery, control-flow or learner-module classes are RemoteErrors."""
    exc = rebuild_exception(described(module, qualname), excluded=("solution",))
    assert isinstance(exc, RemoteError)
    assert not isinstance(exc, (unittest.SkipTest, pytest.skip.Exception, SystemExit))
    assert type(exc).__name__ == qualname
    assert str(exc) == "m"


def test_an_imported_library_exception_is_rebuilt_as_itself() -> None:
    """A class of a module already imported judge-side (json) is raised as that class."""
    exc = rebuild_exception(
        described("json.decoder", "JSONDecodeError", args=["bad", "x", 0]), excluded=()
    )
    assert type(exc) is json.JSONDecodeError
    assert exc.args == ("bad: line 1 column 1 (char 0)",)


def test_an_unimported_module_is_never_imported() -> None:
    """A class of a module the judge has not imported is synthesized, and nothing is imported."""
    assert "antigravity" not in sys.modules
    exc = rebuild_exception(described("antigravity", "Boom"), excluded=())
    assert isinstance(exc, RemoteError)
    assert "antigravity" not in sys.modules


def test_malformed_descriptions_still_give_an_exception() -> None:
    """Wrong types everywhere give a RemoteError with placeholders, never a crash."""
    exc = rebuild_exception({"type": 1, "module": None, "mro": "x", "args": {"$evil": 1}}, ())
    assert isinstance(exc, RemoteError)
    assert str(exc) == "?"


def test_import_error_text_names_the_line() -> None:
    """A failed import reads ``Type: message (file, line N)``; SyntaxError carries its own."""
    error = described("builtins", "NameError", location=["solution.py", 7])
    error["message"] = "name 'x' is not defined"
    assert import_error_text(error) == "NameError: name 'x' is not defined (solution.py, line 7)"
    syntax = described("builtins", "SyntaxError", location=["solution.py", 3])
    syntax["message"] = "invalid syntax (solution.py, line 3)"
    assert import_error_text(syntax) == "SyntaxError: invalid syntax (solution.py, line 3)"
