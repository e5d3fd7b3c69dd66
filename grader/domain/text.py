"""Text comparison helpers shared by the kinds: whitespace, literals, diffs, clipped output.

Pure functions on plain strings; nothing here executes what it compares.
"""

from __future__ import annotations

import ast
import difflib
import re
from typing import Any, Literal

MatchMode = Literal["exact", "normalized", "regex", "literal"]
"""How a stdout is compared: exactly, whitespace-normalised, a regex over the whole text
(``re.DOTALL``), or both sides parsed as Python literals."""
_MAX_LITERAL_CHARS = 100_000


def text_matches(mode: MatchMode, expected: str, actual: str) -> bool:
    """Whether ``actual`` satisfies ``expected`` under ``mode``."""
    if mode == "exact":
        return actual == expected
    if mode == "normalized":
        return normalize_whitespace(actual) == normalize_whitespace(expected)
    if mode == "regex":
        return re.fullmatch(expected, actual, flags=re.DOTALL) is not None
    ok_actual, actual_value = parse_literal(actual)
    ok_expected, expected_value = parse_literal(expected)
    return ok_actual and ok_expected and json_equal(actual_value, expected_value)


def normalize_whitespace(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(lines)


def parse_literal(text: str) -> tuple[bool, Any]:
    """``ast.literal_eval`` with a size cap; never executes anything."""
    if len(text) > _MAX_LITERAL_CHARS:
        return False, None
    try:
        return True, ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def unified_diff(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile="expected",
        tofile="actual",
    )
    return "".join(lines)


def json_equal(left: Any, right: Any) -> bool:
    """Structural equality of plain data where ``True != 1`` and ``1 == 1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, set | frozenset) and isinstance(right, set | frozenset):
        return left == right
    return type(left) is type(right) and left == right


TEST_OUTPUT_CHARS = 500
"""What a test (or a variation) printed, as kept in its verdict; longer output is cut here and
ends with ``OUTPUT_TRUNCATED`` (the observation keeps up to 8000 characters)."""
OUTPUT_TRUNCATED = "\n[output truncated to 500 characters]"


def clip_output(text: str) -> str:
    if len(text) <= TEST_OUTPUT_CHARS:
        return text
    return text[:TEST_OUTPUT_CHARS] + OUTPUT_TRUNCATED
