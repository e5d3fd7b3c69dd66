"""Judge side of a remote ASGI app: ``await app(scope, receive, send)`` as whole messages.

``httpx.ASGITransport(app=proxy)`` calls the proxy like an ASGI app. The judge drains
``receive()`` for the request body, sends one ``asgi`` request (the scope as plain data, without
``app``, ``state`` and ``extensions``), and replays the messages the learner's app sent through
``send``. A lifespan scope is relayed event by event (``startup``, then ``shutdown``) while the
learner side holds the app's lifespan open on its loop.
"""

from __future__ import annotations

from .codec import CodecError, Decoder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from .proxy import RemoteObject
    from .remote import RemoteSession

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 512 * 1024


def _messages(session: RemoteSession, raw: Any) -> list[dict[str, Any]]:
    """The app's messages as plain data: a list of objects, each with a string ``type``."""
    try:
        value = Decoder({}).decode(raw)
    except CodecError as exc:
        raise session.broken(f"the app's messages are not plain data: {exc}") from None
    if type(value) is dict:
        value = [value]
    if type(value) is not list:
        raise session.broken("the app's messages must be a list")
    for message in value:
        if type(message) is not dict:
            raise session.broken("every ASGI message is an object")
        if type(message.get("type")) is not str:
            raise session.broken("every ASGI message has a string 'type'")
    return value


async def drive_asgi(
    session: RemoteSession, app: RemoteObject, scope: dict[str, Any], receive: Receive, send: Send
) -> None:
    """Run one ASGI call of the remote ``app``."""
    plain = session.plain_scope(scope)
    if scope["type"] == "lifespan":
        await _lifespan(session, app, plain, receive, send)
        return
    body = bytearray()
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            break
        chunk = message.get("body", b"")
        body += chunk if type(chunk) is bytes else b""
        if len(body) > MAX_BODY_BYTES:
            raise ValueError(f"request body over {MAX_BODY_BYTES} bytes")
        if not message.get("more_body", False):
            break
    encoded_body = session.send_value(bytes(body))
    raw = session.raw_request(
        {"op": "asgi", "target": app._grader_hid, "scope": plain, "body": encoded_body}
    )
    for sent in _messages(session, raw):
        await send(sent)


async def _lifespan(
    session: RemoteSession, app: RemoteObject, plain: dict[str, Any], receive: Receive, send: Send
) -> None:
    while True:
        message = await receive()
        kind = message.get("type")
        if kind not in ("lifespan.startup", "lifespan.shutdown"):
            raise ValueError(f"unexpected lifespan message {str(kind)[:60]!r}")
        event = kind.rpartition(".")[2]
        raw = session.raw_request(
            {"op": "lifespan", "target": app._grader_hid, "event": event, "scope": plain}
        )
        for sent in _messages(session, raw):
            await send(sent)
        if event == "shutdown":
            return
