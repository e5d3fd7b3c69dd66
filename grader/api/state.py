"""What the API's handlers share: built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import Request

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


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


async def current_key(request: Request) -> ApiKey:
    """The authenticated key of this request (401 without one).

    ``async`` although it never awaits: a hash and a few comparisons run on the event loop,
    where a plain function would cost every request a hop to the thread pool and back.
    """
    return api_state(request).keys.authenticate(bearer(request))
