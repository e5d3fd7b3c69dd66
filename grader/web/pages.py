"""The console's pages: sign-in, the challenge bank, a challenge, a submission.

Each page answers to the API's roles: a submitter sees the public side of challenges and its
own submissions; an instructor sees keys, expectations and the queue; an admin sees every
key's submissions. Not signed in, a page redirects to ``/signin?next=<page>``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from ..adapters.queue import queue_for
from ..api.security import has_role
from ..api.state import ApiState, api_state
from ..domain.bank import Revision
from ..domain.challenge import Challenge, Kind
from ..domain.submission import Role, Submission
from ..errors import AuthError, Forbidden
from ..settings import ApiKey
from .render import highlight_css, page
from .session import check_csrf, csrf_token, sign_in, sign_out, signed_in

router = APIRouter(include_in_schema=False)
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only (no ``//host``, no scheme)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/console"


def who(request: Request) -> tuple[ApiState, ApiKey | None]:
    state = api_state(request)
    return state, signed_in(request, state.settings.api.keys)


def to_signin(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def secured(response: Response) -> Response:
    response.headers.update(_HEADERS)
    return response


def problem(request: Request, status: int, message: str, key: ApiKey | None) -> Response:
    return secured(page(request, "error.html", status, message=message, key=key))


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/static/highlight.css")
async def highlight_sheet() -> PlainTextResponse:
    return PlainTextResponse(highlight_css(), media_type="text/css")


@router.get("/signin")
async def signin_form(
    request: Request, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    _, key = who(request)
    return secured(
        page(request, "signin.html", key=key, next=_safe_next(next_page), csrf=csrf_token(request))
    )


@router.post("/signin")
async def signin(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "",
    next_page: Annotated[str, Form(alias="next")] = "/console",
) -> Response:
    state, _ = who(request)
    try:
        check_csrf(request, csrf_token_field)
        key = state.keys.authenticate(api_key.strip())
    except (AuthError, Forbidden) as exc:
        response = page(
            request,
            "signin.html",
            403 if isinstance(exc, Forbidden) else 401,
            key=None,
            next=_safe_next(next_page),
            csrf=csrf_token(request),
            error=str(exc),
        )
        return secured(response)
    sign_in(request, key)
    return RedirectResponse(_safe_next(next_page), status_code=303)


@router.post("/signout")
async def signout(
    request: Request, csrf_token_field: Annotated[str, Form(alias="csrf_token")] = ""
) -> Response:
    _, key = who(request)
    try:
        check_csrf(request, csrf_token_field)
    except Forbidden as exc:
        return problem(request, 403, str(exc), key)
    sign_out(request)
    return RedirectResponse("/signin", status_code=303)


@router.get("/console")
async def console(request: Request) -> Response:
    state, key = who(request)
    if key is None:
        return to_signin(request)
    queues: dict[str, int] = {}
    workers: list[dict[str, object]] = []
    if has_role(key, Role.INSTRUCTOR):  # the whole bank: validating and refused ones too
        listed = await run_in_threadpool(_bank, state)
        queues, workers = await run_in_threadpool(_operations, state)
    else:
        listed = [(c, "published") for c in state.challenges.values()]
    sets: dict[str, list[tuple[Challenge, str]]] = defaultdict(list)
    for challenge, status in sorted(listed, key=lambda entry: entry[0].qualified_id):
        sets[challenge.set].append((challenge, status))
    return secured(
        page(
            request,
            "console.html",
            key=key,
            csrf=csrf_token(request),
            sets=dict(sets),
            queues=queues,
            workers=workers,
        )
    )


def _bank(state: ApiState) -> list[tuple[Challenge, str]]:
    """Each challenge's latest upload and its status (``retired`` when retired)."""
    listed = []
    len(state.challenges)  # the published view seeds an empty bank on its first read
    for record in state.bank.records():
        doc = state.bank.revision(record.head)
        if doc is not None:
            listed.append((doc.challenge, "retired" if record.retired else doc.status.value))
    return listed


def _operations(state: ApiState) -> tuple[dict[str, int], list[dict[str, object]]]:
    queues = {name: state.store.queue_depth(queue_for(name)) for name in state.environments}
    return queues, state.store.workers()


@router.get("/console/challenges/{set_name}/{challenge_id}")
async def challenge_page(
    request: Request,
    set_name: str,
    challenge_id: str,
    revision: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16}$")] = None,
) -> Response:
    """The published challenge; for instructors the latest upload (or ``revision``) with its
    validation: the page reloads itself while a worker is validating it."""
    state, key = who(request)
    if key is None:
        return to_signin(request)
    qid = f"{set_name}/{challenge_id}"
    instructor = has_role(key, Role.INSTRUCTOR)
    doc = await run_in_threadpool(_revision, state, qid, revision) if instructor else None
    challenge = doc.challenge if doc is not None else state.challenges.get(qid)
    if challenge is None:
        return problem(request, 404, f"no challenge {qid}", key)
    # A tests challenge's code is its reference solution: instructors only, as in the API.
    show_code = instructor or challenge.kind is not Kind.TESTS
    return secured(
        page(
            request,
            "challenge.html",
            key=key,
            challenge=challenge,
            instructor=instructor,
            csrf=csrf_token(request),
            show_code=show_code,
            doc=doc,
            expectation=(
                challenge.expectation.model_dump_json(indent=2, exclude_none=True)
                if instructor and challenge.expectation is not None
                else None
            ),
        )
    )


def _revision(state: ApiState, qid: str, revision: str | None) -> Revision | None:
    record = state.bank.record(qid)
    if record is None:
        return None
    wanted = revision or record.head
    return state.bank.revision(wanted) if wanted in record.revisions else None


@router.get("/console/submissions/{submission_id}")
async def submission_page(request: Request, submission_id: str) -> Response:
    state, key = who(request)
    if key is None:
        return to_signin(request)
    submission: Submission | None = await run_in_threadpool(state.store.get, submission_id)
    if submission is None or (submission.key_id != key.id and not has_role(key, Role.ADMIN)):
        return problem(request, 404, f"no submission {submission_id}", key)
    # As the API shows it: a submitter's result follows the quiz's feedback rules.
    submission = submission.shown(full=has_role(key, Role.INSTRUCTOR))
    observation = submission.verdict.observation if submission.verdict else None
    return secured(
        page(
            request,
            "submission.html",
            key=key,
            csrf=csrf_token(request),
            submission=submission,
            verdict=submission.verdict,
            observation=observation,
        )
    )
