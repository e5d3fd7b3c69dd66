"""What the API's handlers share: built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..adapters.bank import ChallengeBank
from ..adapters.completions import Completions
from ..adapters.queue import TaskQueue
from ..adapters.store import SubmissionStore
from ..domain.challenge import Challenge
from ..domain.environment import Environment
from ..domain.sets import ChallengeSet
from ..settings import ApiKey, Settings
from .security import KeyRing, RateLimiter


@dataclass
class ApiState:
    settings: Settings
    store: SubmissionStore
    queue: TaskQueue
    keys: KeyRing
    limiter: RateLimiter
    challenges: Mapping[str, Challenge]
    """The published challenges (``PublishedChallenges``: the bank, as every process sees it)."""
    environments: dict[str, Environment]
    completions: Completions
    bank: ChallengeBank
    sets: dict[str, ChallengeSet] = field(default_factory=dict)
    """Declarations of the bundled sets (``_set.yaml``: title, badge, late answers)."""


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.grader
    return state


# Both schemes appear in the OpenAPI document (Swagger's Authorize button offers both); neither
# answers on its own when absent, so a missing key is our 401 with our error body.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key: `Authorization: Bearer grd_...`",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKey",
    description="The same API key in an `X-API-Key` header",
)


async def current_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> ApiKey:
    """The authenticated key of this request (401 without one): a bearer token first, else
    an ``X-API-Key`` header.

    ``async`` although it never awaits: a hash and a few comparisons run on the event loop,
    where a plain function would cost every request a hop to the thread pool and back.
    """
    raw = bearer.credentials.strip() if bearer is not None else api_key
    return api_state(request).keys.authenticate(raw)
