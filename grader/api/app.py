"""The FastAPI application. ``uvicorn --factory grader.api.app:serve`` in the service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__, logs, web
from ..adapters.bank import ChallengeBank, PublishedChallenges
from ..adapters.completions import Completions
from ..adapters.queue import TaskQueue
from ..adapters.store import SubmissionStore
from ..domain.environment import discover
from ..domain.loader import load_challenges, load_sets
from ..settings import Settings, get_settings
from . import bank, catalog, errors, gradebook, health, learners, regrade, runs, submissions
from .errors import error_body
from .models import PublicSubmission
from .security import KeyRing, RateLimiter
from .state import ApiState
from .tracing import HttpMetrics, Tracing


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuses to start with no keys or default secrets."""
    settings = settings or get_settings()
    settings.api.check_for_service()
    environments = discover(settings.images.root)
    # Every file is checked here (a broken one stops the start, naming it); they seed an
    # empty bank on first use, and the bank is what is served (grader.adapters.bank).
    bundled = load_challenges([settings.api.challenges_root], environments)
    store = SubmissionStore.from_url(
        settings.redis.url,
        settings.api.retention_seconds,
        connect_timeout=settings.redis.api_connect_timeout_seconds,
        read_timeout=settings.redis.api_read_timeout_seconds,
    )
    challenge_bank = ChallengeBank(store.client, settings.api.retention_seconds)
    state = ApiState(
        settings=settings,
        store=store,
        queue=TaskQueue(settings),
        keys=KeyRing(settings.api.keys),
        limiter=RateLimiter(store, settings.api.rate_per_minute),
        challenges=PublishedChallenges(challenge_bank, bundled),
        environments=environments,
        completions=Completions.from_url(settings.redis.url),
        sets=load_sets(settings.api.challenges_root),
        bank=challenge_bank,
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
        "`Authorization: Bearer <key>` (or `X-API-Key: <key>`). Every error answers "
        '`{"error": {"code", "message"}}`.',
        generate_unique_id_function=operation_id,
    )
    describe_webhooks(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.state.grader = state
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    app.state.http_metrics = HttpMetrics()
    app.add_middleware(Tracing, metrics=app.state.http_metrics)  # outermost: sees every answer
    app.include_router(submissions.router)
    app.include_router(runs.router)
    app.include_router(catalog.router)
    app.include_router(learners.router)
    app.include_router(gradebook.router)
    app.include_router(bank.router)
    app.include_router(regrade.router)
    app.include_router(health.router)
    web.install(app, settings)
    return app


def serve() -> FastAPI:
    """The service's factory (``uvicorn --factory grader.api.app:serve``): logs as JSON lines.

    ``create_app`` leaves logging alone, so tests and embedders keep their own handlers.
    """
    settings = get_settings()
    logs.configure(settings.log.level, settings.log.format)
    return create_app(settings)


def operation_id(route: APIRoute) -> str:
    """A stable, readable ``operationId``: the route function's name in camelCase
    (``create_submission`` -> ``createSubmission``), which generated clients name methods by."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with its own ``{"detail"}`` validation error left out.

    Every route declares our ``ErrorBody`` for 422, so FastAPI adds its own only to the
    webhook (whose receiver's answers are not ours to describe); unreferenced, its schemas go.
    """
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
            webhooks=app.webhooks.routes,
            separate_input_output_schemas=app.separate_input_output_schemas,
        )
        for operations in schema.get("webhooks", {}).values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):  # the second is the first's part
            if f'"#/components/schemas/{name}"' not in json.dumps(schema):
                components.pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def describe_webhooks(app: FastAPI) -> None:
    """The OpenAPI ``webhooks`` entry: what a ``callback_url`` receives (docs/api.md)."""

    @app.webhooks.post("submission-finished", operation_id="submissionFinished")
    def submission_finished(
        body: PublicSubmission,
        x_grader_timestamp: Annotated[
            str, Header(description="Unix seconds; reject old ones (replays)")
        ],
        x_grader_signature: Annotated[
            str,
            Header(
                description='"v1=" + hex HMAC-SHA256(webhook_secret, timestamp + "." + raw body)'
            ),
        ],
    ) -> None:
        """POSTed to a submission's ``callback_url`` once it is final: the same body as
        ``GET /v1/submissions/{id}``, signed with the key's webhook secret. Answer 2xx; 5xx,
        429 and timeouts are retried with backoff, other answers end the delivery."""


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
