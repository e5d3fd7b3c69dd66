"""The one place that turns errors into HTTP responses. Every 4xx says what was wrong."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AuthError,
    ChallengeError,
    Forbidden,
    GraderError,
    LimitsError,
    NotFound,
    QueueError,
    RateLimited,
    Rejected,
    StoreError,
    UnsafeCallback,
)


def error_body(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message, **extra}}
    )


def _status_for(exc: GraderError) -> tuple[int, str]:
    if isinstance(exc, Forbidden):
        return 403, "forbidden"
    if isinstance(exc, AuthError):
        return 401, "unauthorized"
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, RateLimited):
        return 429, "rate_limited"
    if isinstance(exc, Rejected):
        return exc.status, "rejected" if exc.status != 413 else "too_large"
    if isinstance(exc, UnsafeCallback | LimitsError | ChallengeError):
        return 422, "invalid"
    if isinstance(exc, StoreError | QueueError):
        return 503, "unavailable"
    return 500, "internal"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(GraderError)
    async def grader_error(_: Request, exc: GraderError) -> JSONResponse:
        status, code = _status_for(exc)
        response = error_body(status, code, str(exc))
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, AuthError) and not isinstance(exc, Forbidden):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return error_body(422, "invalid", message, problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, "http_error", str(exc.detail))
