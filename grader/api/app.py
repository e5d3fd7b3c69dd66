"""The FastAPI application. ``uvicorn --factory grader.api.app:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from .. import __version__
from ..adapters.completions import Completions
from ..adapters.queue import TaskQueue
from ..adapters.store import SubmissionStore
from ..domain.environment import discover
from ..domain.loader import load_challenges
from ..settings import Settings, get_settings
from . import catalog, errors, health, submissions
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
    store = SubmissionStore.from_url(settings.redis.url, settings.api.retention_seconds)
    state = ApiState(
        settings=settings,
        store=store,
        queue=TaskQueue(settings),
        keys=KeyRing(settings.api.keys),
        limiter=RateLimiter(store.client, settings.api.rate_per_minute),
        challenges=challenges,
        environments=environments,
        completions=Completions.from_url(settings.redis.url),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.completions.close()
        store.client.close()

    app = FastAPI(
        title="Grader API",
        version=__version__,
        lifespan=lifespan,
        description="Sandboxed grading of Python challenges. Authenticate with "
        "`Authorization: Bearer <key>`.",
    )
    app.state.grader = state
    errors.install(app)
    limit = settings.api.max_body_bytes

    @app.middleware("http")
    async def body_limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return error_body(413, "too_large", f"request body larger than {limit} bytes")
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return error_body(413, "too_large", f"request body larger than {limit} bytes")
            request._body = body  # already read: let the handler see it
        return await call_next(request)

    app.include_router(submissions.router)
    app.include_router(catalog.router)
    app.include_router(health.router)
    return app
