"""The harness's strict JSON conversion of state values (runs in-process, no Docker)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images" / "harness"))

from grader_harness.jsonstate import Unserializable, to_plain, type_name


def test_plain_values_pass_through() -> None:
    """Exact built-in JSON types come back equal; tuples become lists."""
    value = {"a": [1, 2.5, None, True, "x"], "b": (1, 2)}
    assert to_plain(value) == {"a": [1, 2.5, None, True, "x"], "b": [1, 2]}


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        {1: "x"},
        {1, 2},
        b"bytes",
        object(),
        10**5000,
    ],
    ids=["nan", "inf", "int-key", "set", "bytes", "object", "huge-int"],
)
def test_non_json_values_are_refused(value: object) -> None:
    """Sets, bytes, non-string keys, NaN, objects and huge ints have no plain JSON form."""
    with pytest.raises(Unserializable):
        to_plain(value)


def test_subclasses_of_builtins_are_refused() -> None:
    """An int subclass (which could override __eq__) is not plain data."""

    class Liar(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    with pytest.raises(Unserializable, match="Liar is not plain JSON data"):
        to_plain(Liar(3))


def test_deep_nesting_is_refused() -> None:
    """Nesting deeper than the limit is refused rather than recursed."""
    value: list[object] = []
    for _ in range(50):
        value = [value]
    with pytest.raises(Unserializable, match="nested deeper"):
        to_plain(value)


def test_type_name_qualifies_non_builtins() -> None:
    """Built-ins keep their bare name; others get module and qualified name."""
    assert type_name(RuntimeError) == "RuntimeError"
    assert type_name(Path) == "pathlib.Path"
