"""Plain learner modules through proxies: functions, classes, generators, exceptions, data."""

# mypy: disable-error-code="import-not-found"
# ruff: noqa: PLC0415  (each test imports the learner module its own learner side serves)

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest
from grader_harness.rpc import RemoteError, RemoteImportError

from .conftest import Learner


def solution_account(value: object) -> object:
    """The same object under another name (so the comparison below is not with itself)."""
    return value


SOLUTION = textwrap.dedent(
    """
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
    """
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


def test_module_attributes_are_read_live(learner: Callable[..., Learner]) -> None:
    """An int attribute is read anew each time; a module dict stays live for writes."""
    learner({"solution.py": SOLUTION})
    import solution

    assert solution.counter == 0
    assert solution.bump() == 1
    assert solution.counter == 1
    config = solution.config
    config["debug"] = True
    config["tags"].append("b")
    assert solution.config == {"debug": True, "tags": ["a", "b"]}
    assert "debug" in config
    assert len(config) == 2
    assert sorted(config) == ["debug", "tags"]
    assert config.get("debug") is True
    assert config.pop("debug") is True
    assert config == {"tags": ["a", "b"]}
    del config["tags"]
    assert config == {}


def test_classes_instantiate_and_methods_run_remotely(learner: Callable[..., Learner]) -> None:
    """A learner class is a callable proxy; its instance's attributes and methods work."""
    learner({"solution.py": SOLUTION})
    from solution import Account

    account = Account("ada")
    assert account.owner == "ada"
    assert account.deposit(5) == 5
    assert account.deposit(2) == 7
    assert account.balance == 7
    assert len(account) == 7
    assert repr(account) == "Account('ada')"
    account.owner = "bob"
    assert account.owner == "bob"
    assert account == solution_account(account)
    assert account != Account("bob")
    assert {account: 1}[account] == 1


def test_generators_iterate_through_proxies(learner: Callable[..., Learner]) -> None:
    """A remote generator yields each value; exhausting it stops like a local one."""
    learner({"solution.py": SOLUTION})
    from solution import countdown

    assert list(countdown(3)) == [3, 2, 1]
    generator = countdown(1)
    assert next(generator) == 1
    with pytest.raises(StopIteration):
        next(generator)


def test_judge_callables_are_called_back(learner: Callable[..., Learner]) -> None:
    """A judge lambda passed as an argument is called by the learner through the channel."""
    learner({"solution.py": SOLUTION})
    from solution import apply

    seen = []

    def record(value: int) -> int:
        seen.append(value)
        return value * 2

    assert apply(record, 20) == 41
    assert seen == [20]


def test_builtin_exceptions_are_raised_as_themselves(learner: Callable[..., Learner]) -> None:
    """``pytest.raises(ValueError, match=...)`` works on a learner's ValueError."""
    learner({"solution.py": SOLUTION})
    from solution import Account, bad

    with pytest.raises(ValueError, match=r"^bad value: 3$"):
        bad(3)
    with pytest.raises(ValueError, match="must be positive"):
        Account("x").deposit(0)
    with pytest.raises(TypeError):
        bad()


def test_learner_exception_classes_keep_their_builtin_base(learner: Callable[..., Learner]) -> None:
    """A learner ``NotFound(KeyError)`` is caught as KeyError and named like the learner's."""
    learner({"solution.py": SOLUTION})
    from solution import find

    with pytest.raises(KeyError) as caught:
        find("k")
    assert type(caught.value).__name__ == "NotFound"
    assert isinstance(caught.value, RemoteError)
    assert caught.value.args == ("k",)


def test_missing_names_are_import_errors(learner: Callable[..., Learner]) -> None:
    """``from solution import missing`` raises ImportError like Python does."""
    learner({"solution.py": SOLUTION})
    with pytest.raises(ImportError, match="cannot import name 'missing'"):
        from solution import missing  # noqa: F401
    import solution

    with pytest.raises(AttributeError):
        solution.missing  # noqa: B018


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\ny = (\n", "SyntaxError: '(' was never closed (solution.py, line 2)"),
        ("a = 1\n\nb = x + 1\n", "NameError: name 'x' is not defined (solution.py, line 3)"),
        (
            "import os\nimport no_such_module_here\n",
            "ModuleNotFoundError: No module named 'no_such_module_here' (solution.py, line 2)",
        ),
    ],
)
def test_failed_imports_are_remote_import_errors(
    learner: Callable[..., Learner], source: str, message: str
) -> None:
    """A learner module that fails to import raises RemoteImportError with its whole error."""
    learner({"solution.py": source})
    with pytest.raises(RemoteImportError) as caught:
        from solution import app  # noqa: F401
    assert str(caught.value) == message
    assert isinstance(caught.value, ImportError)
    import solution

    with pytest.raises(RemoteImportError) as again:
        solution.app  # noqa: B018
    assert str(again.value) == message


def test_what_the_learner_prints_during_a_call_is_the_judges_output(
    learner: Callable[..., Learner], capsys: pytest.CaptureFixture[str]
) -> None:
    """Printed learner-side, shown judge-side on the calling test's stdout (and still in the
    learner's own output)."""
    handle = learner(
        {"solution.py": "def greet(name):\n    print('hello', name)\n    return len(name)\n"}
    )
    import solution

    capsys.readouterr()
    assert solution.greet("ada") == 3
    assert capsys.readouterr().out == "hello ada\n"
    assert solution.greet("bob") == 3
    assert capsys.readouterr().out == "hello bob\n"  # each call brings only its own output
    handle.session.close()
    assert handle.process.stdout is not None
    assert handle.process.stdout.read() == b"hello ada\nhello bob\n"


def test_a_response_whose_output_is_not_text_breaks_the_session(
    learner: Callable[..., Learner],
) -> None:
    """``out`` must be text under the cap; anything else is a protocol violation."""
    handle = learner(
        {},
        script=(
            "import json, os\n"
            "frame = channel.receive(10)\n"
            "channel.send({'re': frame['id'], 'ok': None, 'out': 5})\n"
            "time.sleep(5)\n"
        ),
        install=False,
    )
    from grader_harness.rpc.endpoint import ProtocolError

    with pytest.raises(ProtocolError, match="'out' is text"):
        handle.session.endpoint.request({"op": "import", "module": "solution"})
