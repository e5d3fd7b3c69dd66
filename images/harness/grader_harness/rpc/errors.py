"""Exceptions across the channel: described by the side that raised, rebuilt by the judge.

The judge rebuilds a learner's exception as a real class only when that class is a builtin
``Exception`` subclass, or an ``Exception`` subclass of a module *already imported* on the
judge's side that is neither a learner module nor part of the test machinery (pytest, pluggy,
unittest, this harness): a learner can never make the judge import anything, nor raise
``pytest.skip.Exception``, ``SystemExit`` or ``KeyboardInterrupt`` in the judge's process.
Anything else becomes a synthesized ``RemoteError`` subclass named like the learner's class,
whose bases include the nearest such class in the learner's MRO (``class NotFound(KeyError)``
is still caught by ``pytest.raises(KeyError)``).
"""

from __future__ import annotations

import builtins
import os
import sys
import traceback

from .codec import Decoder, Encoder, NotData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import Any

MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_CHARS = 4000
MAX_MRO = 24
MACHINERY = ("builtins", "_pytest", "pytest", "pluggy", "unittest", "grader_harness")


class RemoteError(Exception):
    """Base of the exceptions synthesized for a learner's own exception classes."""


class RemoteImportError(ImportError):
    """A learner module failed to import on the learner's side; the message is its error."""


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more]"


def safe_str(value: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``str(value)`` that survives hostile ``__str__`` methods."""
    try:
        text = str(value)
        return clip(text, limit) if type(text) is str else "<__str__ returned a non-string>"
    except BaseException as exc:
        return f"<unprintable: {type(exc).__name__}>"


def _name(kind: type) -> list[str]:
    module = getattr(kind, "__module__", None)
    qualname = getattr(kind, "__qualname__", None)
    return [
        module if type(module) is str else "?",
        qualname if type(qualname) is str else "?",
    ]


def _not_data(value: object) -> dict[str, Any]:
    raise NotData("not data")


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """Type, MRO, message, data args and the frames in files under the working directory."""
    kind = type(exc)
    module, qualname = _name(kind)
    info: dict[str, Any] = {
        "type": qualname,
        "module": module,
        "mro": [_name(k) for k in kind.__mro__[1:MAX_MRO]],
        "message": safe_str(exc),
    }
    try:
        info["args"] = Encoder(_not_data).encode(list(exc.args))
    except BaseException:
        pass
    try:
        here = os.getcwd() + os.sep
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if f.filename.startswith(here) and "site-packages" not in f.filename
        ]
        if frames:
            info["location"] = [os.path.relpath(frames[-1].filename, here), frames[-1].lineno]
            info["traceback"] = clip("".join(traceback.format_list(frames)), MAX_TRACEBACK_CHARS)
    except BaseException:
        pass
    return info


def resolve_class(module: str, qualname: str, excluded: Collection[str]) -> type | None:
    """The class ``module.qualname`` if its module is already imported here and allowed."""
    top = module.partition(".")[0]
    if top in excluded or top in MACHINERY or "<" in qualname:
        return None
    found: object = sys.modules.get(module)
    if found is None:
        return None
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except Exception:
            return None
    return found if isinstance(found, type) else None


def _exception_class(module: str, qualname: str, excluded: Collection[str]) -> type | None:
    if module == "builtins":
        found = getattr(builtins, qualname, None)
    else:
        found = resolve_class(module, qualname, excluded)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


_SYNTHESIZED: dict[tuple[str, str, type], type] = {}


def _synthesize(module: str, qualname: str, base: type) -> type:
    key = (module, qualname, base)
    if key not in _SYNTHESIZED:
        bases: tuple[type, ...] = (RemoteError,) if base is Exception else (RemoteError, base)
        name = qualname.rpartition(".")[2] or "RemoteError"
        try:
            made = type(name, bases, {"__module__": module, "__qualname__": qualname})
        except TypeError:  # instance layouts that cannot be combined
            made = type(name, (RemoteError,), {"__module__": module, "__qualname__": qualname})
        _SYNTHESIZED[key] = made
    return _SYNTHESIZED[key]


def _text(error: dict[str, Any], key: str, limit: int) -> str:
    value = error.get(key)
    return clip(value, limit) if type(value) is str else "?"


def rebuild_exception(error: dict[str, Any], excluded: Collection[str]) -> Exception:
    """A judge-side exception for a learner's described one (never trusting its shape)."""
    module = _text(error, "module", 200)
    qualname = _text(error, "type", 200)
    message = _text(error, "message", MAX_MESSAGE_CHARS)
    cls = _exception_class(module, qualname, excluded)
    if cls is None:
        base: type = Exception
        mro = error.get("mro")
        for entry in mro[:MAX_MRO] if type(mro) is list else []:
            if type(entry) is list and len(entry) == 2 and all(type(e) is str for e in entry):
                found = _exception_class(entry[0], entry[1], excluded)
                if found is not None:
                    base = found
                    break
        cls = _synthesize(module, qualname, base)
    args: tuple[Any, ...] = (message,)
    if "args" in error:
        try:
            decoded = Decoder({}).decode(error["args"])
            if type(decoded) is list and len(decoded) <= 8:
                args = tuple(decoded)
        except Exception:
            pass
    exc = _instantiate(cls, args, message)
    remote_traceback = error.get("traceback")
    try:  # not a note: pytest.raises(match=...) would see it
        exc.__grader_remote__ = True  # type: ignore[attr-defined]
        if type(remote_traceback) is str:
            exc.remote_traceback = clip(remote_traceback, MAX_TRACEBACK_CHARS)  # type: ignore[attr-defined]
    except Exception:
        pass
    return exc


def _instantiate(kind: type, args: tuple[Any, ...], message: str) -> Exception:
    cls: Any = kind
    exc: Exception
    try:
        exc = cls(*args)
        str(exc)
    except Exception:
        try:
            made: Exception = cls.__new__(cls, message)
            made.args = (message,)
            str(made)
            exc = made
        except Exception:
            exc = _synthesize(cls.__module__, cls.__qualname__, Exception)(message)
    return exc


def import_error_text(error: dict[str, Any]) -> str:
    """``Type: message (file, line N)`` for a learner module's failed import."""
    text = f"{_text(error, 'type', 200)}: {_text(error, 'message', MAX_MESSAGE_CHARS)}"
    location = error.get("location")
    is_syntax = (
        any(
            entry == ["builtins", "SyntaxError"]
            for entry in error.get("mro") or ()
            if type(entry) is list
        )
        or error.get("type") == "SyntaxError"
    )
    if (
        not is_syntax
        and type(location) is list
        and len(location) == 2
        and type(location[0]) is str
        and type(location[1]) is int
    ):
        text += f" ({clip(location[0], 200)}, line {location[1]})"
    return text
