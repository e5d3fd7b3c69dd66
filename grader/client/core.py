"""What the sync and the async client share: requests, answers, errors and the retry policy.

Each API call is described once as a ``Call`` (method, path, parameters, body, headers); the
two clients only differ in how they send it. Retries are tenacity's: a 429 or 503 is tried
again after its ``Retry-After`` (else exponential backoff with full jitter), and so is a lost
connection or a timeout. A POST is only ever retried with an ``Idempotency-Key``, which the
clients make for every submission unless given one, so a retry never submits twice.
"""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..api.models import ErrorBody
from ..domain import runs
from ..domain.observation import Limits, RunMode
from ..errors import ApiError, Unreachable

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_WAIT_SECONDS = 30.0
"""The longest ``?wait=`` the API takes; longer waits are several long-polls."""
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
REFUSED_WHOLE = frozenset({429, 503})
"""The API's own refusals: nothing of the request was stored."""
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
FINAL = frozenset({"done", "failed"})


class RunRecord(runs.RunRecord):
    """A raw run (``POST /v1/runs``) as the API answers it: its lifecycle and observation."""

    model_config = ConfigDict(extra="allow")

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the clients try. ``attempts`` counts the first try."""

    attempts: int = 5
    backoff_max: float = 20.0
    """Cap of the exponential backoff (with full jitter) when the API gives no Retry-After."""
    retry_after_max: float = 120.0
    """A Retry-After longer than this is not waited for: the 429/503 is raised at once."""

    def tenacity(self, call: Call) -> dict[str, Any]:
        """Keyword arguments for tenacity's ``Retrying`` and ``AsyncRetrying`` of ``call``.

        A call that is not ``replayable`` (a batch: no idempotency key) is retried only when
        the API refused it whole (429, 503), never after a lost connection.
        """

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, Retryable):
                # A proxy's 502/504 may come after the API took the request: not for a batch.
                whole = exc.response.status_code in REFUSED_WHOLE
                waited = exc.retry_after is None or exc.retry_after <= self.retry_after_max
                return waited and (call.replayable or whole)
            return call.replayable and isinstance(exc, _TRANSIENT)

        return {
            "retry": retry_if_exception(retryable),
            "wait": self._wait,
            "stop": stop_after_attempt(self.attempts),
            "reraise": True,
        }

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return exc.retry_after
        backoff: float = wait_random_exponential(multiplier=0.5, max=self.backoff_max)(state)
        return backoff


class Retryable(Exception):
    """A 429/503-like answer: worth another try, after ``retry_after`` seconds if it says."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response
        self.retry_after = retry_after(response)


@dataclass(frozen=True)
class Call:
    """One API request, before it is sent."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    """Seconds for this call, when it waits on the server longer than the client's timeout."""
    replayable: bool = True
    """Sending it twice does no harm (a GET, or a POST with an Idempotency-Key)."""

    def send_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"params": self.params or None, "headers": self.headers}
        if self.body is not None:
            args["json"] = self.body
        if self.timeout is not None:
            args["timeout"] = self.timeout
        return args


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def checked(response: httpx.Response) -> httpx.Response:
    """The response if it is a success; ``Retryable`` or ``ApiError`` otherwise."""
    if response.status_code < 400:
        return response
    if response.status_code in RETRIED_STATUSES:
        raise Retryable(response)
    raise api_error(response)


def api_error(response: httpx.Response) -> ApiError:
    """The API's ``{"error": {...}}`` as an exception (or what a proxy answered instead)."""
    try:
        detail = ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        text = response.text.strip()[:300] or response.reason_phrase
        return ApiError(response.status_code, "http_error", text, None, retry_after(response))
    return ApiError(
        response.status_code, detail.code, detail.message, detail.problems, retry_after(response)
    )


def final_error(exc: BaseException, base_url: str) -> Exception:
    """What a call that failed every try raises: ``ApiError`` or ``Unreachable``."""
    if isinstance(exc, Retryable):
        return api_error(exc.response)
    if isinstance(exc, httpx.TransportError):
        return Unreachable(f"no answer from {base_url}: {type(exc).__name__}: {exc}")
    raise exc


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ApiError(
            response.status_code, "unexpected_answer", f"not a {model.__name__}: {exc}"
        ) from None


def headers_for(api_key: str | None, user_agent: str) -> dict[str, str]:
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# the calls ----------------------------------------------------------------------------------


def submit_call(
    challenge_id: str,
    *,
    code: str | None,
    choice: str | None,
    learner_id: str | None,
    callback_url: str | None,
    metadata: Mapping[str, Any] | None,
    idempotency_key: str | None,
    wait: float,
    timeout: float,
    files: Mapping[str, str] | None = None,
) -> Call:
    body: dict[str, Any] = {"challenge_id": challenge_id}
    if files is not None:
        body["files"] = dict(files)
    for name, value in (
        ("code", code),
        ("choice", choice),
        ("learner_id", learner_id),
        ("callback_url", callback_url),
    ):
        if value is not None:
            body[name] = value
    if metadata:
        body["metadata"] = dict(metadata)
    return Call(
        "POST",
        "/v1/submissions",
        params={"wait": wait} if wait > 0 else {},
        body=body,
        headers={"Idempotency-Key": idempotency_key or new_idempotency_key()},
        timeout=timeout + wait if wait > 0 else None,
    )


def run_call(
    environment: str,
    files: Mapping[str, str],
    *,
    entry: str,
    mode: RunMode | str,
    stdin: str | None,
    limits: Limits | Mapping[str, float] | None,
    idempotency_key: str | None,
    wait: float,
    timeout: float,
) -> Call:
    body: dict[str, Any] = {
        "environment": environment,
        "files": dict(files),
        "entry": entry,
        "mode": RunMode(mode).value,
    }
    if stdin is not None:
        body["stdin"] = stdin
    if limits is not None:
        body["limits"] = (
            limits.model_dump(exclude_defaults=True) if isinstance(limits, Limits) else dict(limits)
        )
    return Call(
        "POST",
        "/v1/runs",
        params={"wait": wait} if wait > 0 else {},
        body=body,
        headers={"Idempotency-Key": idempotency_key or new_idempotency_key()},
        timeout=timeout + wait if wait > 0 else None,
    )


def get_call(path: str, *, wait: float, timeout: float, **params: Any) -> Call:
    query = {k: v for k, v in params.items() if v is not None}
    if wait > 0:
        query["wait"] = wait
    return Call("GET", path, params=query, timeout=timeout + wait if wait > 0 else None)


def new_idempotency_key() -> str:
    return f"grader-client-{uuid.uuid4()}"


@dataclass
class Deadline:
    """How long ``wait`` may still go on: ``None`` seconds means until the result is final."""

    seconds: float | None
    clock: Callable[[], float] = time.monotonic
    start: float = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.clock()

    def next_wait(self) -> float:
        """The ``?wait=`` of the next long-poll (0 once the time is up)."""
        if self.seconds is None:
            return MAX_WAIT_SECONDS
        return max(0.0, min(MAX_WAIT_SECONDS, self.start + self.seconds - self.clock()))

    def over(self) -> bool:
        return self.seconds is not None and self.clock() >= self.start + self.seconds


def wait_seconds(wait: bool | float) -> float | None:
    """``True``: until final (``None``); ``False``: not at all (0); a number: that long."""
    if wait is True:
        return None
    if wait is False:
        return 0.0
    if wait < 0:
        raise ValueError("wait must be a bool or a number of seconds >= 0")
    return float(wait)
