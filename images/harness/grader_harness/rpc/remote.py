"""The judge side: learner modules as proxies in ``sys.modules``, over a ``Channel``.

The judge runs the hidden tests and never executes learner code: it sends requests, decodes
exact data, wraps learner objects in proxies (``proxy.py``) and rebuilds learner exceptions
(``errors.py``). Judge callables passed to the learner (``lambda: "test-user"``) stay here as
callbacks the learner can only call. Whatever the learner side sends, the judge gets a value,
an exception, or an ``RpcError`` (protocol violation, timeout, closed channel) that ends the
session; never a hang past ``call_timeout`` per call, never unbounded memory.
"""

from __future__ import annotations

import inspect
import sys
import types
import weakref
from importlib.machinery import ModuleSpec

from ..protocol import WORKDIR
from .codec import CodecError, Decoder, Encoder, NotData, expect, expect_id
from .endpoint import Failure, JudgeEndpoint, ProtocolError, RpcError
from .errors import (
    MAX_MESSAGE_CHARS,
    RemoteImportError,
    clip,
    describe_exception,
    import_error_text,
    rebuild_exception,
    resolve_class,
)
from .proxy import MIXINS, RemoteObject, make_proxy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence
    from typing import Any

    from .channel import Channel

_KIND_NAMES = {
    inspect.Parameter.POSITIONAL_ONLY: "positional_only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}
SCOPE_DROPPED = ("app", "state", "extensions")


def _refuse(obj: object) -> dict[str, Any]:
    raise NotData(f"a {type(obj).__name__} is not plain data")


class RemoteModule(types.ModuleType):
    """A learner module: attribute reads and writes go to the learner's side."""

    def __init__(self, session: RemoteSession, name: str) -> None:
        super().__init__(name)
        self.__spec__ = ModuleSpec(name, None)
        # Where the module lives on the learner's side: Python's own messages name it
        # ("cannot import name 'x' from 'solution' (/sandbox/solution.py)").
        self.__file__ = f"{WORKDIR}/{name.replace('.', '/')}.py"
        self.__dict__["_grader_session"] = session

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.__dict__["_grader_session"].module_attribute(self.__name__, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__") and name.endswith("__"):
            super().__setattr__(name, value)
            return
        session = self.__dict__["_grader_session"]
        session.request(
            "setattr", target=session.module_handle(self.__name__), name=name,
            value=session.send_value(value),
        )  # fmt: skip


class RemoteSession:
    """One judge-side session with one learner side."""

    def __init__(self, channel: Channel, modules: Sequence[str], *, call_timeout: float) -> None:
        self.modules = tuple(modules)
        self.endpoint = JudgeEndpoint(channel, self._serve, describe_exception, call_timeout)
        self._proxies: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._callbacks: dict[int, Callable[..., Any]] = {}
        self._callback_ids: dict[int, int] = {}
        self._modules: dict[str, int | RemoteImportError] = {}
        self._fixtures: dict[tuple[str, str], Any] = {}
        self._decoder = Decoder({"$handle": self._proxy_tag, "$callback": self._callback_tag})

    # -- life cycle ---------------------------------------------------------------------
    def install(self) -> None:
        """Put a ``RemoteModule`` for each learner module into ``sys.modules``."""
        for name in self.modules:
            sys.modules[name] = RemoteModule(self, name)

    def close(self) -> None:
        """Tell the learner side to stop (``bye``); never raises."""
        try:
            self.endpoint.notify({"op": "bye"})
        except (Exception, RpcError):
            pass

    # -- requests -----------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> Any:
        """Send a request; its decoded result, or the learner's exception rebuilt here."""
        return self.decode(self.raw_request({"op": op, **fields}))

    def raw_request(self, frame: dict[str, Any]) -> Any:
        """Send a request; its undecoded result, or the learner's exception rebuilt here."""
        try:
            return self.endpoint.request(frame)
        except Failure as failure:
            raise rebuild_exception(failure.error, self.modules) from None

    def module_handle(self, name: str) -> int:
        """Import learner module ``name`` on the learner's side (once); its handle."""
        known = self._modules.get(name)
        if known is None:
            try:
                raw = self.endpoint.request({"op": "import", "name": name})
                known = expect_id(raw, "$handle") if type(raw) is dict else -1
                if known < 0:
                    raise self.broken("import did not answer with a handle")
            except Failure as failure:
                known = RemoteImportError(import_error_text(failure.error), name=name)
            except CodecError as exc:
                raise self.broken(f"bad import answer: {exc}") from None
            self._modules[name] = known
        if isinstance(known, RemoteImportError):
            raise RemoteImportError(str(known), name=name)
        return known

    def module_attribute(self, module: str, name: str) -> Any:
        handle = self.module_handle(module)
        key = (module, name)
        if key in self._fixtures:
            return self._fixtures[key]
        raw = self.raw_request({"op": "getattr", "target": handle, "name": name})
        if type(raw) is dict and "$fixture" in raw:
            from .fixtures import build_fixture

            self._fixtures[key] = build_fixture(self, raw)
            return self._fixtures[key]
        return self.decode(raw)

    def decode(self, raw: Any) -> Any:
        """A learner value decoded; a malformed one ends the session (``ProtocolError``)."""
        try:
            return self._decoder.decode(raw)
        except CodecError as exc:
            raise self.broken(f"bad value from the learner side: {exc}") from None

    def broken(self, message: str) -> ProtocolError:
        """End the session for a protocol violation; the error to raise."""
        error = ProtocolError(message)
        if self.endpoint.broken is None:
            self.endpoint.broken = error
        return error

    # -- values -------------------------------------------------------------------------
    def send_value(self, value: Any) -> Any:
        """Encode a judge value: data by value, proxies by handle, callables as callbacks."""
        return Encoder(self._leaf).encode(value)

    def _leaf(self, obj: object) -> dict[str, Any]:
        if isinstance(obj, RemoteObject) and obj._grader_session is self:
            return {"$handle": obj._grader_hid}
        if type(obj) is RemoteModule and obj.__dict__.get("_grader_session") is self:
            return {"$handle": self.module_handle(obj.__name__)}
        if callable(obj):
            return self._callback(obj)
        raise NotData(f"a judge-side {type(obj).__name__} cannot be sent to the learner side")

    def _callback(self, function: Callable[..., Any]) -> dict[str, Any]:
        cid = self._callback_ids.get(id(function))
        if cid is None or self._callbacks.get(cid) is not function:
            cid = len(self._callbacks) + 1
            self._callbacks[cid] = function
            self._callback_ids[id(function)] = cid
        params: list[list[Any]] = []
        try:
            for p in inspect.signature(function).parameters.values():
                entry: list[Any] = [p.name, _KIND_NAMES[p.kind]]
                if p.default is not inspect.Parameter.empty:
                    try:
                        entry.append(Encoder(_refuse).encode(p.default))
                    except NotData:
                        entry.append(None)
                params.append(entry)
        except (TypeError, ValueError):  # builtins without a signature
            params = [["args", "var_positional"], ["kwargs", "var_keyword"]]
        name = getattr(function, "__name__", "callback")
        return {
            "$callback": cid,
            "params": params,
            "async": inspect.iscoroutinefunction(function),
            "name": name if type(name) is str else "callback",
        }

    def _proxy_tag(self, data: dict[str, Any]) -> Any:
        hid = expect_id(data, "$handle")
        kind = expect(data, "type", list)
        caps = expect(data, "caps", list)
        if set(data) != {"$handle", "type", "caps"}:
            raise CodecError("a handle holds exactly '$handle', 'type' and 'caps'")
        if len(kind) != 2 or not all(type(k) is str for k in kind):
            raise CodecError("a handle's type is [module, qualname]")
        if not all(type(c) is str and c in MIXINS for c in caps):
            raise CodecError("a handle's caps are known capability names")
        found = self._proxies.get(hid)
        if found is None:
            cls = resolve_class(kind[0][:200], kind[1][:200], self.modules)
            if cls is not None and issubclass(cls, type):
                cls = None  # a metaclass would make the proxy pass for a class
            found = make_proxy(self, hid, frozenset(caps), cls)
            self._proxies[hid] = found
        return found

    def _callback_tag(self, data: dict[str, Any]) -> Callable[..., Any]:
        cid = expect_id(data, "$callback")
        if set(data) != {"$callback"} or cid not in self._callbacks:
            raise CodecError(f"unknown callback {cid}")
        return self._callbacks[cid]

    @staticmethod
    def exact(value: Any, kind: type, what: str) -> Any:
        if type(value) is not kind:
            raise TypeError(
                f"{what} should return {kind.__name__}, the learner sent {type(value).__name__}"
            )
        return value

    def text(self, proxy: RemoteObject, op: str) -> str:
        try:
            value = self.request(op, target=proxy._grader_hid)
        except (Exception, RpcError) as exc:  # repr() must not fail while pytest reports
            return f"<remote object #{proxy._grader_hid}: {op} failed: {type(exc).__name__}>"
        if type(value) is not str:
            return f"<remote object #{proxy._grader_hid}>"
        return clip(value, MAX_MESSAGE_CHARS)

    # -- the learner's requests (callbacks) ---------------------------------------------
    def _serve(self, frame: dict[str, Any]) -> Any:
        if frame.get("op") != "call":
            raise ValueError(
                f"the judge side only answers 'call', not {str(frame.get('op'))[:40]!r}"
            )
        cid = expect_id(frame, "target")
        if cid not in self._callbacks:
            raise LookupError(f"unknown callback {cid}")
        args = self.decode(expect(frame, "args", list))
        kwargs = self.decode(expect(frame, "kwargs", dict))
        if not all(type(k) is str for k in kwargs):
            raise TypeError("keyword names must be strings")
        result = self._callbacks[cid](*args, **kwargs)
        if inspect.iscoroutine(result):
            result = _drive(result)
        return self.send_value(result)

    # -- ASGI ---------------------------------------------------------------------------
    @staticmethod
    def is_asgi_call(scope: Any, receive: Any, send: Any) -> bool:
        return (
            type(scope) is dict
            and scope.get("type") in ("http", "lifespan")
            and callable(receive)
            and callable(send)
        )

    def plain_scope(self, scope: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in scope.items():
            if key in SCOPE_DROPPED or type(key) is not str:
                continue
            try:
                out[key] = Encoder(_refuse).encode(value)
            except NotData:
                continue
        return out

    def asgi(
        self, app: RemoteObject, scope: Any, receive: Any, send: Any
    ) -> Coroutine[Any, Any, None]:
        from .asgi import drive_asgi

        return drive_asgi(self, app, scope, receive, send)


def _drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a judge coroutine that awaits only proxies (which never suspend) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a judge-side async callback suspended; it may await only remote objects")
