"""Plain learner modules through proxies: functions, classes, generators, exceptions, data."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from grader_harness.rpc import RemoteError, RemoteImportError

from .conftest import Learner

SOLUTION = textwrap.dedent(
    '''
    counter = 0
    config = {"debug": False, "tags": ["a"]}

    def add(a, b=1, *, scale=1):
        return (a + b) * scale

    def shape():
        return {"ints": {1: "one"}, "pair": (1, 2), "blob": b"\\x00hi", "list": [1.5, None, True]}

    def bump():
        global counter
        counter += 1
        return counter

    def countdown(n):
        while n:
            yield n
            n -= 1

    def apply(function, value):
        return function(value) + 1

    class NotFound(KeyError):
        pass

    def find(key):
        raise NotFound(key)

    def bad(value):
        raise ValueError(f"bad value: {value}")

    class Account:
        def __init__(self, owner):
            self.owner = owner
            self.balance = 0

        def deposit(self, amount):
            if amount <= 0:
                raise ValueError("amount must be positive")
            self.balance += amount
            return self.balance

        def __len__(self):
            return self.balance

        def __repr__(self):
            return f"Account({self.owner!r})"
    '''
)


def test_functions_take_positional_and_keyword_arguments(learner: Callable[..., Learner]) -> None:
    """A call crosses with its arguments and returns exact data by value."""
    learner({"solution.py": SOLUTION})
    from solution import add

    assert add(2) == 3
    assert add(2, 3, scale=10) == 50
    assert type(add(1, 1)) is int


def test_returned_shapes_keep_their_types(learner: Callable[..., Learner]) -> None:
    """Int keys, tuples, bytes, floats and None come back as themselves."""
    learner({"solution.py": SOLUTION})
    import solution

    assert solution.shape() == {
        "ints": {1: "one"},
        "pair": (1, 2),
        "blob": b"\x00hi",
        "list": [1.5, None, True],
    }
