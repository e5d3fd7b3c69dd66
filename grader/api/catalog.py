"""``/v1/challenges`` and ``/v1/environments``: what can be submitted, and where it runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..domain.challenge import Challenge, Kind
from ..domain.submission import Role
from ..errors import NotFound
from ..settings import ApiKey
from .errors import error_responses
from .models import ChallengeList, EnvironmentList, PublicChallenge
from .security import has_role
from .state import api_state, current_key

router = APIRouter(prefix="/v1", tags=["catalog"], responses=error_responses(401, 404, 422, 503))
_KEY_FIELDS = {"answer", "explanation", "expectation", "environments", "state", "limits", "hint"}
"""Kept from submitters: the hint too, which a result shows after a wrong attempt."""


def public_challenge(challenge: Challenge, *, with_key: bool) -> dict[str, Any]:
    """A challenge as the API shows it; keys and expectations only for instructors."""
    hidden = set(_KEY_FIELDS)
    if challenge.kind in (Kind.TESTS, Kind.IO):
        hidden.add("code")  # a tests or io challenge's code is the reference solution
    body = challenge.model_dump(mode="json", exclude=None if with_key else hidden)
    body["id"] = challenge.qualified_id
    body["answerable_by"] = (
        ["choice"]
        if challenge.code is None and challenge.kind is Kind.CONCEPTUAL
        else ["code", "choice"]
        if challenge.options
        else ["code"]
    ) + (["files"] if challenge.files is not None else [])
    return body


@router.get(
    "/challenges",
    summary="List challenges (optionally one set)",
    response_model=ChallengeList,
    response_model_exclude_unset=True,
)
async def list_challenges(
    request: Request,
    key: Annotated[ApiKey, Depends(current_key)],
    set: Annotated[str | None, Query(description="Only this set")] = None,
) -> dict[str, Any]:
    state = api_state(request)
    with_key = has_role(key, Role.INSTRUCTOR)
    # the bank is in Redis: read off the event loop
    published = await run_in_threadpool(lambda: list(state.challenges.values()))
    items = [
        public_challenge(c, with_key=with_key) for c in published if set is None or c.set == set
    ]
    return {"challenges": items, "count": len(items)}


@router.get(
    "/challenges/{set_name}/{challenge_id}",
    summary="One challenge",
    response_model=PublicChallenge,
    response_model_exclude_unset=True,
)
async def get_challenge(
    request: Request,
    set_name: str,
    challenge_id: str,
    key: Annotated[ApiKey, Depends(current_key)],
) -> dict[str, Any]:
    state = api_state(request)
    challenge = await run_in_threadpool(state.challenges.get, f"{set_name}/{challenge_id}")
    if challenge is None:
        raise NotFound(f"no challenge '{set_name}/{challenge_id}'")
    return public_challenge(challenge, with_key=has_role(key, Role.INSTRUCTOR))


@router.get(
    "/environments",
    summary="Pinned environments: names, digests, packages",
    response_model=EnvironmentList,
)
async def list_environments(
    request: Request, key: Annotated[ApiKey, Depends(current_key)]
) -> dict[str, Any]:
    state = api_state(request)

    info = await run_in_threadpool(state.store.environments, list(state.environments))
    items = []
    for name, env in state.environments.items():
        seen = info.get(name, {})
        items.append(
            {
                "name": name,
                "python": env.manifest.python,
                "description": env.manifest.description,
                "packages": dict(sorted(env.manifest.packages.items())),
                "locked": env.lock,
                "image_id": seen.get("image_id"),
                "available": bool(seen),
            }
        )
    return {"environments": items}
