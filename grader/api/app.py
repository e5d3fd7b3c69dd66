"""The FastAPI application. ``uvicorn --factory grader.api.app:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..adapters.completions import Completions
from ..adapters.queue import TaskQueue
from ..adapters.store import SubmissionStore
from ..domain.environment import discover
from ..domain.loader import load_challenges
from ..settings import Settings, get_settings
from . import catalog, errors, health, runs, submissions
from .errors import error_body
from .security import KeyRing, RateLimiter
from .state import ApiState


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuses to start with no keys or default secrets."""
    settings = settings or get_settings()
    settings.api.check_for_service()
    environments = discover(settings.images.root)
    challenges = {
        c.qualified_id: c for c in load_challenges([settings.api.challenges_root], environments)
    }
    store = SubmissionStore.from_url(
        settings.redis.url,
        settings.api.retention_seconds,
        connect_timeout=settings.redis.api_connect_timeout_seconds,
        read_timeout=settings.redis.api_read_timeout_seconds,
    )
    state = ApiState(
        settings=settings,
        store=store,
        queue=TaskQueue(settings),
        keys=KeyRing(settings.api.keys),
        limiter=RateLimiter(store, settings.api.rate_per_minute),
        challenges=challenges,
        environments=environments,
        completions=Completions.from_url(settings.redis.url),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.completions.close()
        store.close()

    app = FastAPI(
        title="Grader API",
        version=__version__,
        lifespan=lifespan,
        description="Sandboxed grading of Python challenges. Authenticate with "
        "`Authorization: Bearer <key>`.",
    )
    app.state.grader = state
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    app.include_router(submissions.router)
    app.include_router(runs.router)
    app.include_router(catalog.router)
    app.include_router(health.router)
    return app


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413 before any handler reads it.

    Plain ASGI: ``@app.middleware("http")`` costs every request an extra task and a stream
    pair. A declared Content-Length is checked at once; a body without one (chunked) is read
    up to the limit first, then handed on.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                refusal = error_body(400, "invalid", "Content-Length must be a number of bytes")
                await refusal(scope, receive, send)
                return
            if int(length) > self.limit:
                await self._refuse(scope, receive, send)
                return
        elif scope["method"] in ("POST", "PUT", "PATCH"):
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                body += message.get("body", b"")
                if len(body) > self.limit:
                    await self._refuse(scope, receive, send)
                    return
                if not message.get("more_body", False):
                    break
            receive = _replay(bytes(body), receive)
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body larger than {self.limit} bytes"
        await error_body(413, "too_large", message)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then defers to the client's."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
