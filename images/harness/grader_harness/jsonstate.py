"""Turn values left by a snippet into plain JSON data, or say why they cannot be.

Only exact built-in types are accepted (``type(v) is int``, never ``isinstance``): a subclass
can override ``__eq__``, ``__str__`` or ``__iter__`` and lie to whoever compares it later.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing costs the container's start-up ~6 ms; only the checker needs it
if TYPE_CHECKING:
    from typing import Any

_MAX_DEPTH = 20
_MAX_ITEMS = 10_000


class Unserializable(Exception):
    """The value is not plain JSON data; the message says why."""


def to_plain(value: object, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Return a JSON-ready copy of ``value`` or raise ``Unserializable``."""
    budget = budget if budget is not None else [_MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise Unserializable(f"more than {_MAX_ITEMS} items")
    if depth > _MAX_DEPTH:
        raise Unserializable(f"nested deeper than {_MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        try:
            str(value)
        except ValueError as exc:  # beyond sys.int_info.str_digits_check_threshold
            raise Unserializable(f"int too large to convert: {exc}") from None
        return value
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise Unserializable(f"float {value!r} has no JSON form")
        return value
    if kind is list or kind is tuple:
        return [to_plain(item, depth + 1, budget) for item in value]  # type: ignore[attr-defined]
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise Unserializable(f"dict key of type {type(key).__name__} is not a string")
            out[key] = to_plain(item, depth + 1, budget)
        return out
    raise Unserializable(f"{type_name(kind)} is not plain JSON data")


def type_name(kind: type) -> str:
    """Qualified name of a type; built-ins keep their bare name."""
    module = getattr(kind, "__module__", None)
    qualname = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", "?")
    if not isinstance(module, str) or module == "builtins":
        return str(qualname)
    return f"{module}.{qualname}"
