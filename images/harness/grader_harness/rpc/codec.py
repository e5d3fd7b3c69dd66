"""Values on the wire: exact JSON-like data by value, everything else tagged.

By value, checked with ``type(x) is ...`` (never ``isinstance``, so a subclass with a lying
``__eq__`` cannot pass as data): ``None``, ``bool``, ``int``, finite ``float``, ``str``,
``list``, ``dict`` with string keys, ``tuple`` and ``bytes``. Tags are one-key-led objects:

- ``{"$tuple": [...]}``, ``{"$bytes": "<base64>"}``;
- ``{"$dict": [[key, value], ...]}``: a dict whose keys are not all strings, or one with a key
  that starts with ``$`` (so data can never pose as a tag);
- ``{"$handle": n, "type": [module, qualname], "caps": [...]}``: an object of the learner's
  side, which keeps it in a table; the judge sends ``{"$handle": n}`` back to name it;
- ``{"$callback": n, ...}``: a callable of the judge's side, which the learner can only call;
- ``{"$fixture": {...}}``: a pytest fixture of a learner module (see ``fixtures.py``).
"""

from __future__ import annotations

import base64
import binascii
import math

from .channel import MAX_FRAME_DEPTH, MAX_FRAME_ELEMENTS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

TAGS = ("$tuple", "$bytes", "$dict", "$handle", "$callback", "$fixture")
# Leave room in a frame's depth budget for the envelope around a value.
MAX_VALUE_DEPTH = MAX_FRAME_DEPTH - 8
MAX_VALUE_ELEMENTS = MAX_FRAME_ELEMENTS // 2


class NotData(Exception):
    """A value cannot travel by value; the message says why."""


class CodecError(Exception):
    """A value received from the peer is malformed; the message says how."""


class Encoder:
    """Encode values, giving every non-data leaf to ``leaf`` (which returns a tag or raises)."""

    def __init__(self, leaf: Callable[[object], dict[str, Any]]) -> None:
        self.leaf = leaf
        self.budget = MAX_VALUE_ELEMENTS

    def encode(self, value: object, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise NotData(f"more than {MAX_VALUE_ELEMENTS} values in one message")
        if depth > MAX_VALUE_DEPTH:
            raise NotData(f"nested deeper than {MAX_VALUE_DEPTH} levels")
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int:
            try:
                str(value)
            except ValueError:  # beyond sys.int_info.str_digits_check_threshold
                raise NotData("int too large to send") from None
            return value
        if kind is float:
            if not math.isfinite(value):  # type: ignore[arg-type]
                raise NotData(f"float {value!r} has no JSON form")
            return value
        if kind is bytes:
            return {"$bytes": base64.b64encode(value).decode("ascii")}  # type: ignore[arg-type]
        if kind is list:
            return [self.encode(v, depth + 1) for v in value]  # type: ignore[attr-defined]
        if kind is tuple:
            return {"$tuple": [self.encode(v, depth + 1) for v in value]}  # type: ignore[attr-defined]
        if kind is dict:
            return self._dict(value, depth)  # type: ignore[arg-type]
        return self.leaf(value)

    def _dict(self, value: dict[Any, Any], depth: int) -> Any:
        items = list(value.items())
        if all(type(k) is str and not k.startswith("$") for k, _ in items):
            return {k: self.encode(v, depth + 1) for k, v in items}
        return {"$dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in items]}


class Decoder:
    """Decode values, handing tagged leaves to ``handlers[tag](obj)``."""

    def __init__(self, handlers: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.handlers = handlers

    def decode(self, data: Any, depth: int = 0) -> Any:
        if depth > MAX_FRAME_DEPTH:
            raise CodecError(f"nested deeper than {MAX_FRAME_DEPTH} levels")
        kind = type(data)
        if data is None or kind in (bool, int, float, str):
            return data
        if kind is list:
            return [self.decode(v, depth + 1) for v in data]
        if kind is not dict:
            raise CodecError(f"unexpected {kind.__name__} in a value")
        tag = next((k for k in data if k.startswith("$")), None)
        if tag is None:
            return {k: self.decode(v, depth + 1) for k, v in data.items()}
        if tag == "$tuple":
            return tuple(self.decode(v, depth + 1) for v in _only(data, tag, list))
        if tag == "$bytes":
            try:
                return base64.b64decode(_only(data, tag, str), validate=True)
            except (binascii.Error, ValueError):
                raise CodecError("$bytes is not base64") from None
        if tag == "$dict":
            return self._dict(_only(data, tag, list), depth)
        handler = self.handlers.get(tag)
        if handler is None:
            raise CodecError(f"unexpected tag {tag[:40]!r}")
        return handler(data)

    def _dict(self, pairs: list[Any], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise CodecError("$dict items must be [key, value] pairs")
            key = self.decode(pair[0], depth + 1)
            try:
                hash(key)
            except TypeError:
                raise CodecError(f"$dict key of type {type(key).__name__} is unhashable") from None
            out[key] = self.decode(pair[1], depth + 1)
        return out


def _only(data: dict[str, Any], tag: str, kind: type) -> Any:
    if len(data) != 1 or type(data[tag]) is not kind:
        raise CodecError(f"{tag} must be the only key and hold a {kind.__name__}")
    return data[tag]


def expect(obj: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    """``obj[key]`` if it has exactly type ``kind``; a precise ``CodecError`` otherwise."""
    if key not in obj:
        if optional:
            return None
        raise CodecError(f"missing {key!r}")
    value = obj[key]
    if type(value) is not kind:
        raise CodecError(f"{key!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def expect_id(obj: dict[str, Any], key: str) -> int:
    """A non-negative int id at ``obj[key]``."""
    value: int = expect(obj, key, int)
    if value < 0 or value >= 2**53:
        raise CodecError(f"{key!r} out of range")
    return value
