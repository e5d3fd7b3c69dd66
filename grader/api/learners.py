"""Learners: open a challenge (its clock starts once), and a set's progress with its badge.

A ``learner_id`` belongs to the API key that sends it. Opening shows the challenge as a
learner sees it (never the key, the expectation, the explanation or a reference solution),
whatever the key's role.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..adapters.sessions import Session
from ..domain.challenge import Challenge
from ..domain.sets import Badge, EarnedBadge
from ..domain.submission import Text, now
from ..errors import NotFound
from ..settings import ApiKey
from .catalog import public_challenge
from .errors import error_responses
from .state import api_state, current_key

router = APIRouter(
    prefix="/v1", tags=["learners"], responses=error_responses(400, 401, 404, 413, 422, 429, 503)
)
LearnerId = Annotated[Text, StringConstraints(min_length=1, max_length=200)]


class OpenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learner_id: LearnerId


class State(StrEnum):
    NOT_OPENED = "not_opened"
    OPEN = "open"
    """Opened, time and attempts left."""
    TIME_UP = "time_up"
    """Past the deadline: an answer is still graded, marked late (and scores only where late
    answers score)."""
    GRADING = "grading"
    """Every attempt used, the last one not graded yet."""
    PASSED = "passed"
    PASSED_LATE = "passed_late"
    """Passed after the deadline, where late answers do not score."""
    FAILED = "failed"
    """Every attempt used, none passed."""


class ChallengeProgress(BaseModel):
    """One learner at one challenge."""

    challenge_id: str
    title: str
    state: State
    opened_at: datetime | None
    deadline: datetime | None
    seconds_left: float | None
    time_limit: int | None
    attempts_allowed: int | None
    attempts_used: int
    attempts_left: int | None
    score: float
    """The best score of an answer that counts (0 to 1)."""
    hint: str | None
    """After a wrong attempt."""


class OpenedChallenge(BaseModel):
    challenge: dict[str, Any]
    """As ``GET /v1/challenges/{set}/{id}`` shows it to a submitter."""
    progress: ChallengeProgress


class SetProgress(BaseModel):
    set: str
    learner_id: str
    title: str
    challenges: list[ChallengeProgress]
    passed: int
    total: int
    score: float = Field(description="Mean of the challenges' scores, 0 to 1")
    badge: Badge | None
    """What the set declares."""
    earned: EarnedBadge | None
    """The badge as this learner earned it: once, with the time."""


def progress_of(challenge: Challenge, session: Session, at: datetime) -> ChallengeProgress:
    """Where a learner stands at ``challenge``, from their session, at ``at``."""
    deadline = seconds_left = None
    if session.opened_at is not None and challenge.time_limit is not None:
        deadline = datetime.fromtimestamp(
            session.opened_at.timestamp() + challenge.time_limit, session.opened_at.tzinfo
        )
        seconds_left = max(0.0, round((deadline - at).total_seconds(), 3))
    allowed = challenge.attempts
    left = None if allowed is None else max(0, allowed - session.used)
    if session.opened_at is None:
        state = State.NOT_OPENED
    elif session.passed:
        state = State.PASSED
    elif session.passed_late:
        state = State.PASSED_LATE
    elif left == 0:
        state = State.FAILED if len(session.results) >= session.used else State.GRADING
    elif deadline is not None and at > deadline:
        state = State.TIME_UP
    else:
        state = State.OPEN
    return ChallengeProgress(
        challenge_id=challenge.qualified_id,
        title=challenge.title,
        state=state,
        opened_at=session.opened_at,
        deadline=deadline,
        seconds_left=seconds_left,
        time_limit=challenge.time_limit,
        attempts_allowed=allowed,
        attempts_used=session.used,
        attempts_left=left,
        score=session.best_score,
        hint=(challenge.hint or None) if session.wrong else None,
    )


@router.post(
    "/challenges/{set_name}/{challenge_id}/open",
    summary="Open a challenge for a learner: its clock starts once",
)
async def open_challenge(
    request: Request,
    set_name: str,
    challenge_id: str,
    body: OpenRequest,
    key: Annotated[ApiKey, Depends(current_key)],
) -> OpenedChallenge:
    """The challenge as the learner sees it, with the deadline and the attempts left.
    Opening again answers the same deadline: the clock does not restart."""
    state = api_state(request)
    challenge = state.challenges.get(f"{set_name}/{challenge_id}")
    if challenge is None:
        raise NotFound(f"no challenge '{set_name}/{challenge_id}'")
    await run_in_threadpool(state.limiter.hit, key)
    session = await run_in_threadpool(
        state.store.sessions.open, key.id, body.learner_id, challenge.qualified_id
    )
    return OpenedChallenge(
        challenge=public_challenge(challenge, with_key=False),
        progress=progress_of(challenge, session, now()),
    )


@router.get("/sets/{set_name}/progress", summary="A learner's progress through a set")
async def set_progress(
    request: Request,
    set_name: str,
    learner_id: Annotated[LearnerId, Query()],
    key: Annotated[ApiKey, Depends(current_key)],
) -> SetProgress:
    """Each challenge's state (not opened, open with its time left, passed, failed, attempts
    left), the set score, and the set's badge with when this learner earned it."""
    state = api_state(request)
    members = sorted(
        (c for c in state.challenges.values() if c.set == set_name), key=lambda c: c.id
    )
    if not members:
        raise NotFound(f"no challenge set {set_name!r}; see GET /v1/challenges")
    declared = state.sets.get(set_name)

    def read() -> tuple[dict[str, Session], EarnedBadge | None]:
        sessions = state.store.sessions.read(key.id, learner_id, (c.qualified_id for c in members))
        return sessions, state.store.sessions.earned(key.id, learner_id, set_name)

    sessions, earned = await run_in_threadpool(read)
    at = now()
    items = [progress_of(c, sessions[c.qualified_id], at) for c in members]
    return SetProgress(
        set=set_name,
        learner_id=learner_id,
        title=(declared.title if declared and declared.title else set_name),
        challenges=items,
        passed=sum(i.state is State.PASSED for i in items),
        total=len(items),
        score=round(sum(i.score for i in items) / len(items), 4),
        badge=declared.badge if declared else None,
        earned=earned,
    )
