"""Judge-side proxies of learner objects.

A proxy's class is built from the capabilities the learner reported (callable, iterable,
awaitable, ...), so ``hasattr``, ``inspect`` and ``collections.abc`` checks see the remote
object's shape and nothing more. Trust rules, decided here and never by learner code:

- ``==`` of a proxy is identity of the learner's object (``hash`` goes with it): a learner
  ``__eq__`` that always says yes never runs for the judge. A live ``dict``/``list`` (see
  ``serve.py``) compares by a by-value snapshot instead, and is unhashable like its type.
- ``bool()``, ``len()`` and ``in`` ask the learner and accept only an exact ``bool``/``int``:
  truthiness of its own object is something a learner controls anyway.
- ``repr``/``str`` are fetched and clipped; they are text to show, never data to compare.
- ``__class__`` is a library class only when the learner names one already imported on the
  judge's side (``isinstance(client, httpx.AsyncClient)``); that claim is the learner's.
- A learner ``__exit__``/``__aexit__`` may swallow only exceptions raised on its own side,
  never the judge's assertion errors.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from .remote import RemoteSession


class RemoteObject:
    """A learner object, named by its handle; every operation is a request."""

    __slots__ = ("__weakref__", "_grader_class", "_grader_hid", "_grader_session")
    _grader_session: RemoteSession
    _grader_hid: int
    _grader_class: type | None

    def _rpc(self, op: str, **fields: Any) -> Any:
        return self._grader_session.request(op, target=self._grader_hid, **fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_grader_"):
            raise AttributeError(name)
        return self._rpc("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._rpc("setattr", name=name, value=self._grader_session.send_value(value))

    def __delattr__(self, name: str) -> None:
        self._rpc("delattr", name=name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        found = self._grader_class
        return found if found is not None else type(self)

    def __eq__(self, other: object) -> bool:
        return other is self or (
            isinstance(other, RemoteObject)
            and other._grader_session is self._grader_session
            and other._grader_hid == self._grader_hid
        )

    def __hash__(self) -> int:
        return hash((id(self._grader_session), self._grader_hid))

    def __bool__(self) -> bool:
        return self._grader_session.exact(self._rpc("bool"), bool, "__bool__") is True

    def __repr__(self) -> str:
        return self._grader_session.text(self, "repr")

    def __str__(self) -> str:
        return self._grader_session.text(self, "str")


class _Call(RemoteObject):
    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        session = self._grader_session
        if len(args) == 3 and not kwargs and session.is_asgi_call(*args):
            return session.asgi(self, *args)
        return self._rpc(
            "call", args=session.send_value(list(args)), kwargs=session.send_value(kwargs)
        )


class _Iter(RemoteObject):
    __slots__ = ()

    def __iter__(self) -> Any:
        return self._rpc("iter")


class _Next(RemoteObject):
    __slots__ = ()

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self._rpc("next")


class _Await(RemoteObject):
    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Any]:
        # The judge's loop waits while the learner's loop runs it: nothing is yielded.
        return self._rpc("await")
        yield


class _AIter(RemoteObject):
    __slots__ = ()

    def __aiter__(self) -> Any:
        return self._rpc("aiter")


class _ANext(RemoteObject):
    __slots__ = ()

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        return self._rpc("anext")


class _Len(RemoteObject):
    __slots__ = ()

    def __len__(self) -> int:
        value: int = self._grader_session.exact(self._rpc("len"), int, "__len__")
        if value < 0:
            raise ValueError("__len__() should return >= 0")
        return value


class _Item(RemoteObject):
    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        return self._rpc("getitem", key=self._grader_session.send_value(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        send = self._grader_session.send_value
        self._rpc("setitem", key=send(key), value=send(value))

    def __delitem__(self, key: Any) -> None:
        self._rpc("delitem", key=self._grader_session.send_value(key))


class _Contains(RemoteObject):
    __slots__ = ()

    def __contains__(self, value: Any) -> bool:
        answer = self._rpc("contains", value=self._grader_session.send_value(value))
        return self._grader_session.exact(answer, bool, "__contains__") is True


def _exc_fields(exc: BaseException | None) -> dict[str, Any]:
    if exc is None:
        return {"exc": None}
    return {"exc": {"type": type(exc).__name__, "message": str(exc)[:2000]}}


def _may_swallow(exc: BaseException | None, answer: object) -> bool:
    return answer is True and exc is not None and getattr(exc, "__grader_remote__", False) is True


class _With(RemoteObject):
    __slots__ = ()

    def __enter__(self) -> Any:
        return self._rpc("getattr", name="__enter__")()

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        return _may_swallow(exc, self._rpc("exit", **_exc_fields(exc)))


class _AWith(RemoteObject):
    __slots__ = ()

    async def __aenter__(self) -> Any:
        return await self._rpc("getattr", name="__aenter__")()

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        return _may_swallow(exc, self._rpc("aexit", **_exc_fields(exc)))


class _Data(RemoteObject):
    """A learner ``dict`` or ``list`` read as an attribute or item: live, compared by value."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def snapshot(self) -> Any:
        """The container's current contents, by value (``TypeError`` if not plain data)."""
        return self._rpc("snapshot")

    def __eq__(self, other: object) -> bool:
        mine = self.snapshot()
        theirs = other.snapshot() if isinstance(other, _Data) else other
        return bool(mine == theirs)

    def __ne__(self, other: object) -> bool:
        return not self == other


MIXINS: dict[str, type[RemoteObject]] = {
    "call": _Call,
    "iter": _Iter,
    "next": _Next,
    "await": _Await,
    "aiter": _AIter,
    "anext": _ANext,
    "len": _Len,
    "item": _Item,
    "contains": _Contains,
    "with": _With,
    "awith": _AWith,
    "data": _Data,
}
# Earlier mixins win where two define a method (a live container compares by value; an
# iterator's __iter__ returns itself).
ORDER = ("data", "next", "anext", "call", "iter", "await", "aiter", "len", "item", "contains",
         "with", "awith")  # fmt: skip
_CLASSES: dict[frozenset[str], type[RemoteObject]] = {}


def proxy_class(caps: frozenset[str]) -> type[RemoteObject]:
    """The proxy class for a set of capabilities (cached)."""
    if caps not in _CLASSES:
        bases = tuple(MIXINS[cap] for cap in ORDER if cap in caps) or (RemoteObject,)
        name = "RemoteObject" if not caps else "Remote[" + ",".join(sorted(caps)) + "]"
        _CLASSES[caps] = type(name, bases, {"__slots__": ()})
    return _CLASSES[caps]


def make_proxy(session: RemoteSession, hid: int, caps: frozenset[str], cls: type | None) -> Any:
    """A new proxy of handle ``hid``."""
    proxy = object.__new__(proxy_class(caps))
    object.__setattr__(proxy, "_grader_session", session)
    object.__setattr__(proxy, "_grader_hid", hid)
    object.__setattr__(proxy, "_grader_class", cls)
    return proxy
