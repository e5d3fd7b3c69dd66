"""Pytest fixtures of learner modules, driven from the judge's side.

``from solution import client`` in hidden tests, where ``client`` is a learner fixture: the
learner side describes it (name, scope, kind, the fixtures it asks for, whether it is a
pytest-asyncio fixture) and the judge builds a fixture of its own, with the same name and
scope, whose body calls the learner's function through a proxy and drives the generator it
returns (yield what it yields; on teardown, run it to its end). Learner code never runs in
the judge's process; the learner side of this module touches no pytest import.

How fixtures are marked: pytest 8.3 returns a wrapper function carrying
``_pytestfixturefunction`` (the marker) and ``__pytest_wrapped__.obj`` (the function);
pytest 8.4+ and 9 return a ``_pytest.fixtures.FixtureFunctionDefinition`` holding
``_fixture_function_marker`` and ``_fixture_function``. ``pytest_asyncio.fixture`` (0.24 and
1.x) sets ``_force_asyncio_fixture`` and ``_loop_scope`` on the function itself.
"""

from __future__ import annotations

import inspect

from .codec import CodecError, expect

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .remote import RemoteSession

KINDS = ("function", "generator", "coroutine", "asyncgen")
SCOPES = ("function", "class", "module", "package", "session")


def _marked(value: object) -> tuple[Any, Any] | None:
    kind = type(value)
    if kind.__name__ == "FixtureFunctionDefinition" and kind.__module__ == "_pytest.fixtures":
        return value._fixture_function_marker, value._fixture_function  # type: ignore[attr-defined]
    if inspect.isfunction(value) and "_pytestfixturefunction" in value.__dict__:
        wrapped = getattr(value.__dict__.get("__pytest_wrapped__"), "obj", None)
        return value.__dict__["_pytestfixturefunction"], wrapped or value.__wrapped__  # type: ignore[attr-defined]
    return None


def describe_fixture(value: object, leaf: Callable[[object], Any]) -> dict[str, Any] | None:
    """Learner side: the fixture ``value`` as data, or ``None`` if it is not a fixture."""
    found = _marked(value)
    if found is None:
        return None
    marker, function = found
    if getattr(marker, "params", None) is not None:
        raise NotImplementedError("parametrized learner fixtures are not supported")
    if inspect.isasyncgenfunction(function):
        kind = "asyncgen"
    elif inspect.iscoroutinefunction(function):
        kind = "coroutine"
    elif inspect.isgeneratorfunction(function):
        kind = "generator"
    else:
        kind = "function"
    wanted = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    scope = getattr(marker, "scope", "function")
    loop_scope = getattr(function, "_loop_scope", None)
    return {
        "name": getattr(marker, "name", None) or function.__name__,
        "scope": scope if scope in SCOPES else "function",
        "autouse": bool(getattr(marker, "autouse", False)),
        "asyncio": getattr(function, "_force_asyncio_fixture", False) is True,
        "loop_scope": loop_scope if loop_scope in SCOPES else None,
        "kind": kind,
        "args": [
            p.name
            for p in inspect.signature(function).parameters.values()
            if p.kind in wanted and p.default is inspect.Parameter.empty
        ],
        "function": leaf(function),
    }


def _checked(raw: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = expect(raw, "$fixture", dict)
    for key, kind in (("name", str), ("scope", str), ("autouse", bool), ("asyncio", bool)):
        expect(info, key, kind)
    if info["scope"] not in SCOPES or info.get("kind") not in KINDS:
        raise CodecError("a fixture's scope or kind is unknown")
    if not info["name"].isidentifier():
        raise CodecError("a fixture's name is not an identifier")
    args = expect(info, "args", list)
    if not all(type(a) is str and a.isidentifier() for a in args) or len(args) > 64:
        raise CodecError("a fixture's arguments are identifiers")
    if info.get("loop_scope") not in (None, *SCOPES):
        raise CodecError("a fixture's loop scope is unknown")
    return info


def build_fixture(session: RemoteSession, raw: dict[str, Any]) -> Any:
    """Judge side: a pytest fixture that drives the learner's fixture function remotely."""
    import pytest

    info = _checked(raw)
    function = session.decode(info["function"])
    name = info["name"]

    body = _body(info["kind"], function, name)
    body.__name__ = body.__qualname__ = name
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(a, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in info["args"]]
    )
    options: dict[str, Any] = {"scope": info["scope"], "autouse": info["autouse"], "name": name}
    if info["asyncio"]:
        import pytest_asyncio

        if info.get("loop_scope") is not None:
            options["loop_scope"] = info["loop_scope"]
        return pytest_asyncio.fixture(body, **options)
    return pytest.fixture(body, **options)


def _body(kind: str, function: Any, name: str) -> Callable[..., Any]:
    """The judge-side fixture function of each kind, calling ``function`` (a proxy)."""

    def extra(value: object) -> None:
        if value is not None:  # anything but the generator's end
            raise RuntimeError(f"fixture {name!r} yielded more than once")

    if kind == "asyncgen":

        async def agen(**kwargs: Any) -> Any:
            generator = function(**kwargs)
            yield await generator.__anext__()
            try:
                extra(await generator.__anext__() or True)
            except StopAsyncIteration:
                pass

        return agen
    if kind == "generator":

        def gen(**kwargs: Any) -> Any:
            generator = function(**kwargs)
            yield next(generator)
            extra(next(generator, None))

        return gen
    if kind == "coroutine":

        async def coro(**kwargs: Any) -> Any:
            return await function(**kwargs)

        return coro

    def plain(**kwargs: Any) -> Any:
        return function(**kwargs)

    return plain
