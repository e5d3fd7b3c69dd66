"""The one place that turns errors into HTTP responses. Every 4xx says what was wrong.

Every answer that is not a success is ``{"error": {"code": ..., "message": ...}}``: ours, the
framework's (unknown route, wrong method, unreadable body) and anything unexpected (500).
Messages never name Redis or broker hosts: those go to the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AttemptsExhausted,
    AuthError,
    ChallengeError,
    Conflict,
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
from .models import ErrorBody, ErrorDetail

__all__ = ["ErrorBody", "ErrorDetail", "describe", "error_body", "error_responses", "install"]

log = structlog.get_logger(__name__)

UNAVAILABLE = "the submission store or the queue is unavailable; retry shortly"
UNAVAILABLE_RETRY_AFTER = 2
"""Seconds a 503 asks a client to wait: Redis restarting (AOF replay) takes about that."""
INTERNAL = "internal error; it has been logged"
_HTTP_CODES = {400: "invalid", 404: "not_found", 405: "method_not_allowed"}


_MEANINGS = {
    400: "The body is not readable JSON, or the answer does not suit the challenge",
    401: "Missing or unknown API key",
    403: "The key's role does not allow this",
    404: "No such challenge or submission",
    409: "The request contradicts what is stored (conflict), the learner has no attempt left "
    "at this challenge (attempts_exhausted), or there is no result in that format yet "
    "(not_finished, not_graded)",
    415: "The body is not of a media type this operation reads",
    413: "The body, the code or the batch is too large",
    422: "The request does not match the schema (see problems), or an unsafe callback URL",
    429: "Over the key's rate limit; see Retry-After",
    503: "Redis or the broker is unavailable; retry",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of these error statuses: every one answers an ``ErrorBody``."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entries[status] = {"model": ErrorBody, "description": _MEANINGS[status]}
        if status in (429, 503):
            entries[status]["headers"] = _RETRY_AFTER
    return entries


def error_body(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    """An error answer; text from the request is escaped so it always encodes as UTF-8."""
    content = _encodable({"error": {"code": code, "message": message, **extra}})
    return JSONResponse(status_code=status, content=content, headers=headers)


def describe(exc: GraderError) -> tuple[int, str, str]:
    """The HTTP status, the error code and the message that answer ``exc``."""
    if isinstance(exc, StoreError | QueueError):
        return 503, "unavailable", UNAVAILABLE
    status, code = _status_for(exc)
    return status, code, INTERNAL if status == 500 else str(exc)


def _status_for(exc: GraderError) -> tuple[int, str]:
    if isinstance(exc, Forbidden):
        return 403, "forbidden"
    if isinstance(exc, AuthError):
        return 401, "unauthorized"
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, Conflict):
        return 409, "conflict"
    if isinstance(exc, RateLimited):
        return 429, "rate_limited"
    if isinstance(exc, AttemptsExhausted):
        return 409, "attempts_exhausted"
    if isinstance(exc, Rejected):
        return exc.status, "rejected" if exc.status != 413 else "too_large"
    if isinstance(exc, UnsafeCallback | LimitsError | ChallengeError):
        return 422, "invalid"
    return 500, "internal"


def _encodable(value: Any) -> Any:
    """``value`` with lone surrogates escaped (``\\ud800``), which UTF-8 cannot encode."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(GraderError)
    async def grader_error(_: Request, exc: GraderError) -> JSONResponse:
        status, code, message = describe(exc)
        if status >= 500:
            log.warning("server_error", status=status, error=str(exc)[:500])
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if status == 503:
            headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        if isinstance(exc, AuthError) and not isinstance(exc, Forbidden):
            headers["WWW-Authenticate"] = "Bearer"
        extra = {}
        if isinstance(exc, ChallengeError) and exc.problems:
            extra["problems"] = exc.problems
        return error_body(status, code, message, headers, **extra)

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
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_body(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer is sent, so the server still logs the trace.
        log.error("internal_error", error=repr(exc)[:500])
        return error_body(500, "internal", INTERNAL)
