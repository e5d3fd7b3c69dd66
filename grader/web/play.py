"""The quiz as the seed plays it: ``/play/{set}``, one question at a time.

Every rule is the server's: the page opens a challenge and answers it through the same
functions as ``POST /v1/challenges/{set}/{id}/open`` and ``POST /v1/submissions``, so the
clock, the attempts, the hint, the explanation and the badge are decided there, never here.
The learner is the signed-in key's learner id (asked once per session; the key's id by
default), so a platform key can play as any of its learners and two keys never share one.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from ..api.errors import describe
from ..api.learners import OpenRequest, open_challenge, set_progress
from ..api.submissions import create_submission
from ..domain.submission import SubmissionRequest
from ..errors import Forbidden, GraderError
from .pages import problem, secured, to_signin, who
from .render import page
from .session import check_csrf, csrf_token

router = APIRouter(include_in_schema=False)
_LEARNER = "learner_id"
_LAST = "last_submissions"
_FLASH = "flash"
_WAIT_SECONDS = 20.0
"""How long an answer's page waits for its verdict before showing it as queued."""


def _learner(request: Request, key_id: str) -> str:
    learner = request.session.get(_LEARNER)
    return learner if isinstance(learner, str) and learner else key_id


@router.get("/play/{set_name}")
async def play_set(request: Request, set_name: str) -> Response:
    _, key = who(request)
    if key is None:
        return to_signin(request)
    learner = _learner(request, key.id)
    try:
        progress = await set_progress(request, set_name, learner, key)
    except GraderError as exc:
        status, _, message = describe(exc)
        return problem(request, status, message, key)
    return secured(
        page(
            request,
            "play_set.html",
            key=key,
            csrf=csrf_token(request),
            learner=learner,
            progress=progress,
        )
    )


@router.post("/play/{set_name}/learner")
async def choose_learner(
    request: Request,
    set_name: str,
    learner_id: Annotated[str, Form(min_length=1, max_length=200)],
    csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "",
) -> Response:
    _, key = who(request)
    if key is None:
        return to_signin(request)
    try:
        check_csrf(request, csrf_token_field)
    except Forbidden as exc:
        return problem(request, 403, str(exc), key)
    request.session[_LEARNER] = learner_id.strip() or key.id
    request.session.pop(_LAST, None)
    return RedirectResponse(f"/play/{set_name}", status_code=303)


@router.get("/play/{set_name}/{challenge_id}")
async def play_challenge(request: Request, set_name: str, challenge_id: str) -> Response:
    """Opens the challenge (its clock starts on the first view, never again) and shows it
    with the learner's last answer to it in this session, as the API shows it to them."""
    state, key = who(request)
    if key is None:
        return to_signin(request)
    learner = _learner(request, key.id)
    try:
        opened = await open_challenge(
            request, set_name, challenge_id, OpenRequest(learner_id=learner), key
        )
    except GraderError as exc:
        status, _, message = describe(exc)
        return problem(request, status, message, key)
    last = None
    last_id = _last_answers(request).get(f"{set_name}/{challenge_id}")
    if last_id is not None:
        stored = await run_in_threadpool(state.store.get, last_id)
        if stored is not None and stored.key_id == key.id and stored.learner_id == learner:
            last = stored.public()  # as a submitter reads it: feedback rules applied
    return secured(
        page(
            request,
            "play_challenge.html",
            key=key,
            csrf=csrf_token(request),
            learner=learner,
            set_name=set_name,
            challenge=opened.challenge,
            progress=opened.progress,
            last=last,
            error=request.session.pop(_FLASH, None),
            attempt_token=secrets.token_urlsafe(16),
        )
    )


@router.post("/play/{set_name}/{challenge_id}")
async def answer(
    request: Request,
    set_name: str,
    challenge_id: str,
    csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "",
    choice: Annotated[str | None, Form(max_length=1)] = None,
    code: Annotated[str | None, Form()] = None,
    attempt_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Submits the answer and waits for its verdict; a double click sends one answer (the
    form's token is the idempotency key)."""
    _, key = who(request)
    if key is None:
        return to_signin(request)
    back = RedirectResponse(f"/play/{set_name}/{challenge_id}", status_code=303)
    try:
        check_csrf(request, csrf_token_field)
    except Forbidden as exc:
        return problem(request, 403, str(exc), key)
    try:
        body = SubmissionRequest(
            challenge_id=f"{set_name}/{challenge_id}",
            choice=choice or None,
            code=None if choice else code,
            learner_id=_learner(request, key.id),
        )
    except ValueError:
        request.session[_FLASH] = "Choose an option or write code before answering."
        return back
    try:
        response = await create_submission(
            request, body, key, idempotency_key=attempt_token or None, wait=_WAIT_SECONDS
        )
    except GraderError as exc:
        request.session[_FLASH] = describe(exc)[2][:300]
        return back
    submitted: dict[str, Any] = json.loads(bytes(response.body))
    answers = _last_answers(request)
    answers[f"{set_name}/{challenge_id}"] = submitted["id"]
    request.session[_LAST] = answers
    return back


def _last_answers(request: Request) -> dict[str, str]:
    """The id of the last answer to each challenge in this session (ids only: a cookie is
    small)."""
    kept = request.session.get(_LAST)
    return kept if isinstance(kept, dict) else {}
