"""The learner side: imports the learner's modules and answers the judge's requests.

It runs in the learner's process, so nothing here is trusted: it only has to be right for
honest code. Objects stay here in a handle table; the judge gets exact data by value and
``$handle`` tags for everything else (see ``codec.py``). Reads of attributes and items that
are a ``dict`` or ``list`` return a *live* handle (``app.dependency_overrides[k] = v`` on the
judge's side changes the learner's dict); calls, iteration and awaits return data by value.
It writes nothing but frames to the channel: the learner's own output goes to its stdout.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
import threading

from .aio import LoopThread, run_http, run_lifespan
from .codec import CodecError, Decoder, Encoder, NotData, expect, expect_id
from .endpoint import MAX_OUTPUT_CHARS, Bye, LearnerEndpoint
from .errors import clip, describe_exception, safe_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from .channel import Channel

MAX_TEXT_CHARS = 4000
_CAPS = (
    ("iter", "__iter__"),
    ("next", "__next__"),
    ("await", "__await__"),
    ("aiter", "__aiter__"),
    ("anext", "__anext__"),
    ("len", "__len__"),
    ("item", "__getitem__"),
    ("contains", "__contains__"),
    ("with", "__exit__"),
    ("awith", "__aexit__"),
)
_KINDS = {
    "positional_only": inspect.Parameter.POSITIONAL_ONLY,
    "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "var_positional": inspect.Parameter.VAR_POSITIONAL,
    "keyword_only": inspect.Parameter.KEYWORD_ONLY,
    "var_keyword": inspect.Parameter.VAR_KEYWORD,
}


def capabilities(obj: object) -> list[str]:
    """What the judge's proxy of ``obj`` should support, read from its type."""
    kind = type(obj)
    caps = ["call"] if callable(obj) else []
    caps += [cap for cap, method in _CAPS if hasattr(kind, method)]
    if kind is dict or kind is list:
        caps.append("data")
    return caps


def _type_name(obj: object) -> list[str]:
    kind = type(obj)
    module, qualname = getattr(kind, "__module__", "?"), getattr(kind, "__qualname__", "?")
    return [module if type(module) is str else "?", qualname if type(qualname) is str else "?"]


class Server:
    """The handle table, the judge's callbacks, and one method per operation."""

    def __init__(self, channel: Channel, modules: Sequence[str]) -> None:
        self.modules = tuple(modules)
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}  # id(obj) -> handle
        self.callbacks: dict[int, Callable[..., Any]] = {}
        self.callback_ids: dict[int, int] = {}  # id(function) -> callback id
        self.printed = Printed()
        self.endpoint = LearnerEndpoint(channel, self.handle, describe_exception, self.printed.take)
        self.loop = LoopThread(self.endpoint.pump, self.endpoint.wake)
        self.decoder = Decoder({"$handle": self._handle_tag, "$callback": self._callback_tag})

    # -- values -------------------------------------------------------------------------
    def add(self, obj: object) -> int:
        found = self.ids.get(id(obj))
        if found is not None and self.objects.get(found) is obj:
            return found
        handle = len(self.objects) + 1  # handles live as long as the session
        self.objects[handle] = obj
        self.ids[id(obj)] = handle
        return handle

    def _leaf(self, obj: object) -> dict[str, Any]:
        cid = self.callback_ids.get(id(obj))
        if cid is not None and self.callbacks.get(cid) is obj:
            return {"$callback": cid}
        return {"$handle": self.add(obj), "type": _type_name(obj), "caps": capabilities(obj)}

    def encode(self, value: object) -> Any:
        return Encoder(self._leaf).encode(value)

    def live(self, value: object) -> Any:
        """Attribute and item reads: a dict or list stays here, as a live handle."""
        if type(value) is dict or type(value) is list:
            return self._leaf(value)
        return self.encode(value)

    def _handle_tag(self, data: dict[str, Any]) -> object:
        handle = expect_id(data, "$handle")
        if handle not in self.objects:
            raise CodecError(f"unknown handle {handle}")
        return self.objects[handle]

    def _callback_tag(self, data: dict[str, Any]) -> Callable[..., Any]:
        cid = expect_id(data, "$callback")
        if cid not in self.callbacks:
            self.callbacks[cid] = self._make_callback(cid, data)
            self.callback_ids[id(self.callbacks[cid])] = cid
        return self.callbacks[cid]

    def _make_callback(self, cid: int, data: dict[str, Any]) -> Callable[..., Any]:
        request = self.endpoint.request

        def call_judge(*args: Any, **kwargs: Any) -> Any:
            frame = {"op": "call", "target": cid, "args": self.encode(list(args))}
            frame["kwargs"] = self.encode(kwargs)
            return self.decoder.decode(request(frame))

        async def call_judge_async(*args: Any, **kwargs: Any) -> Any:
            return call_judge(*args, **kwargs)

        function: Any = call_judge_async if data.get("async") is True else call_judge
        params = []
        for entry in expect(data, "params", list):
            default = self.decoder.decode(entry[2]) if len(entry) > 2 else inspect.Parameter.empty
            params.append(inspect.Parameter(entry[0], _KINDS[entry[1]], default=default))
        function.__signature__ = inspect.Signature(params)
        function.__name__ = function.__qualname__ = safe_str(data.get("name", "callback"), 100)
        return function  # type: ignore[no-any-return]

    def target(self, frame: dict[str, Any]) -> Any:
        handle = expect_id(frame, "target")
        if handle not in self.objects:
            raise CodecError(f"unknown handle {handle}")
        return self.objects[handle]

    # -- dispatch -----------------------------------------------------------------------
    def handle(self, frame: dict[str, Any]) -> Any:
        op = expect(frame, "op", str)
        method = getattr(self, "op_" + op, None)
        if method is None:
            raise CodecError(f"unknown op {clip(op, 40)!r}")
        return method(frame)

    def op_import(self, frame: dict[str, Any]) -> Any:
        name = expect(frame, "name", str)
        if name not in self.modules:
            raise ImportError(f"{clip(name, 100)!r} is not one of the learner's modules")
        return self._leaf(importlib.import_module(name))

    def op_getattr(self, frame: dict[str, Any]) -> Any:
        obj = self.target(frame)
        value = getattr(obj, expect(frame, "name", str))
        if type(obj) is type(sys) and getattr(obj, "__name__", None) in self.modules:
            from .fixtures import describe_fixture

            described = describe_fixture(value, self._leaf)
            if described is not None:
                return {"$fixture": described}
        return self.live(value)

    def op_setattr(self, frame: dict[str, Any]) -> None:
        setattr(self.target(frame), expect(frame, "name", str), self.decoder.decode(frame["value"]))

    def op_delattr(self, frame: dict[str, Any]) -> None:
        delattr(self.target(frame), expect(frame, "name", str))

    def op_call(self, frame: dict[str, Any]) -> Any:
        args = self.decoder.decode(expect(frame, "args", list))
        kwargs = self.decoder.decode(expect(frame, "kwargs", dict))
        return self.encode(self.target(frame)(*args, **kwargs))

    def op_getitem(self, frame: dict[str, Any]) -> Any:
        return self.live(self.target(frame)[self.decoder.decode(frame.get("key"))])

    def op_setitem(self, frame: dict[str, Any]) -> None:
        key, value = self.decoder.decode(frame.get("key")), self.decoder.decode(frame.get("value"))
        self.target(frame)[key] = value

    def op_delitem(self, frame: dict[str, Any]) -> None:
        del self.target(frame)[self.decoder.decode(frame.get("key"))]

    def op_contains(self, frame: dict[str, Any]) -> bool:
        return self.decoder.decode(frame.get("value")) in self.target(frame)

    def op_len(self, frame: dict[str, Any]) -> int:
        return len(self.target(frame))

    def op_bool(self, frame: dict[str, Any]) -> bool:
        return bool(self.target(frame))

    def op_repr(self, frame: dict[str, Any]) -> str:
        return clip(repr(self.target(frame)), MAX_TEXT_CHARS)

    def op_str(self, frame: dict[str, Any]) -> str:
        return clip(str(self.target(frame)), MAX_TEXT_CHARS)

    def op_snapshot(self, frame: dict[str, Any]) -> Any:
        def refuse(obj: object) -> dict[str, Any]:
            raise NotData(f"{_type_name(obj)[1]} is not plain data")

        return Encoder(refuse).encode(self.target(frame))

    def op_iter(self, frame: dict[str, Any]) -> Any:
        return self._leaf(iter(self.target(frame)))

    def op_next(self, frame: dict[str, Any]) -> Any:
        return self.encode(next(self.target(frame)))

    def op_aiter(self, frame: dict[str, Any]) -> Any:
        return self._leaf(aiter(self.target(frame)))

    def op_anext(self, frame: dict[str, Any]) -> Any:
        return self.encode(self.loop.run(anext(self.target(frame))))

    def op_await(self, frame: dict[str, Any]) -> Any:
        return self.encode(self.loop.run(self.target(frame)))

    def op_exit(self, frame: dict[str, Any]) -> bool:
        return bool(self.target(frame).__exit__(*_exc_info(frame)))

    def op_aexit(self, frame: dict[str, Any]) -> bool:
        return bool(self.loop.run(self.target(frame).__aexit__(*_exc_info(frame))))

    def op_asgi(self, frame: dict[str, Any]) -> Any:
        scope = self.decoder.decode(expect(frame, "scope", dict))
        body = self.decoder.decode(frame.get("body"))
        if type(scope) is not dict or type(body) is not bytes:
            raise CodecError("asgi needs a scope object and a body in bytes")
        return self.encode(self.loop.run(run_http(self.target(frame), scope, body)))

    def op_lifespan(self, frame: dict[str, Any]) -> Any:
        event = expect(frame, "event", str)
        if event not in ("startup", "shutdown"):
            raise CodecError("lifespan event must be 'startup' or 'shutdown'")
        scope = self.decoder.decode(expect(frame, "scope", dict))
        lifespans = self.loop.lifespans
        return self.encode(self.loop.run(run_lifespan(lifespans, self.target(frame), event, scope)))


def _exc_info(frame: dict[str, Any]) -> tuple[Any, Any, None]:
    """A stand-in for the judge's exception: a builtin class of that name, else ``Exception``."""
    raised = frame.get("exc")
    if type(raised) is not dict:
        return None, None, None
    kind = getattr(builtins, str(raised.get("type")), None)
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        kind = Exception
    exc = kind(safe_str(raised.get("message")))
    return kind, exc, None


class Printed:
    """``sys.stdout`` while serving: what the learner's code prints still goes to the run's
    output, and is also kept until the next response takes it to the judge (as the output of
    the test that made the request)."""

    def __init__(self) -> None:
        self.real = sys.stdout
        self.kept: list[str] = []
        self.size = 0
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        if type(text) is str:
            with self.lock:
                if self.size < MAX_OUTPUT_CHARS:
                    self.kept.append(text[: MAX_OUTPUT_CHARS - self.size])
                    self.size += len(self.kept[-1])
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()

    def take(self) -> str:
        with self.lock:
            text, self.kept, self.size = "".join(self.kept), [], 0
        return text

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def serve(channel: Channel, modules: Sequence[str]) -> None:
    """Answer the judge's requests until it says ``bye`` or closes the channel."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    server = Server(channel, modules)
    sys.stdout = server.printed
    try:
        server.endpoint.pump(lambda: False)
    except Bye:
        pass
