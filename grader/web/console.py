"""The instructor's console: the bank with each challenge's status, uploading a challenge and
watching it validate, the drift matrix, and the submissions with filters.

Uploads go through the same parsing and storing as ``POST /v1/challenges`` (a worker
validates by execution before learners see it); the submissions list is the gradebook's
query, shown by the same feedback rules as ``GET /v1/submissions``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from ..adapters.bank import ChallengeBank
from ..api.bank import parse_upload, store_upload
from ..api.errors import describe
from ..api.security import has_role
from ..domain.bank import ChallengeRecord, Revision
from ..domain.gradebook import Query as BookQuery
from ..domain.gradebook import row
from ..domain.submission import Role
from ..errors import ChallengeError, Forbidden, GraderError
from ..settings import ApiKey
from .pages import problem, secured, to_signin, who
from .render import page
from .session import check_csrf, csrf_token

router = APIRouter(include_in_schema=False)
SUBMISSIONS_PER_PAGE = 100


def _instructor(request: Request) -> tuple[ApiKey | None, Response | None]:
    _, key = who(request)
    if key is None:
        return None, to_signin(request)
    if not has_role(key, Role.INSTRUCTOR):
        return key, problem(request, 403, "this page is for instructor and admin keys", key)
    return key, None


def bank_view(bank: ChallengeBank) -> list[tuple[ChallengeRecord, Revision | None]]:
    """Every challenge with its latest upload (validating, published or refused)."""
    return [(record, bank.revision(record.head)) for record in bank.records()]


@router.get("/console/upload")
async def upload_form(request: Request) -> Response:
    key, refused = _instructor(request)
    if refused is not None:
        return refused
    return secured(
        page(request, "upload.html", key=key, csrf=csrf_token(request), text="", path="")
    )


@router.post("/console/upload")
async def upload(
    request: Request,
    text: Annotated[str, Form(max_length=256 * 1024)],
    path: Annotated[str, Form(max_length=201)] = "",
    csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "",
) -> Response:
    """Stores the file as its challenge's latest revision (new or replacing) and shows it
    validating; a file the loader refuses comes back with every problem, file, line, field."""
    key, refused = _instructor(request)
    if refused is not None or key is None:
        return refused or to_signin(request)
    state, _ = who(request)
    try:
        check_csrf(request, csrf_token_field)
    except Forbidden as exc:
        return problem(request, 403, str(exc), key)
    try:
        challenge = await run_in_threadpool(parse_upload, state, text, path.strip() or None)
        answer = await run_in_threadpool(store_upload, state, key, challenge, create=False)
    except GraderError as exc:
        status, _, message = describe(exc)
        problems = (exc.problems or []) if isinstance(exc, ChallengeError) else []
        return secured(
            page(
                request,
                "upload.html",
                status,
                key=key,
                csrf=csrf_token(request),
                text=text,
                path=path,
                error=message,
                problems=problems,
            )
        )
    target = f"/console/challenges/{answer.id}?revision={answer.revision}"
    return RedirectResponse(target, status_code=303)


@router.get("/console/matrix")
async def matrix(request: Request) -> Response:
    """Environment by challenge: the outcome of each challenge's latest upload in every
    environment, as its validation ran it; bundled challenges were not run on the service."""
    key, refused = _instructor(request)
    if refused is not None:
        return refused
    state, _ = who(request)
    view = await run_in_threadpool(bank_view, state.bank)
    environments = sorted(state.environments)
    rows = []
    for record, doc in view:
        cells = {c.environment: c for c in doc.matrix.cells} if doc and doc.matrix else {}
        rows.append((record, doc, [cells.get(name) for name in environments]))
    return secured(
        page(
            request,
            "matrix.html",
            key=key,
            csrf=csrf_token(request),
            environments=environments,
            rows=rows,
        )
    )


@router.get("/console/submissions")
async def submissions(
    request: Request,
    set_name: Annotated[str | None, Query(alias="set", max_length=100)] = None,
    challenge: Annotated[str | None, Query(max_length=130)] = None,
    learner_id: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The gradebook's query, oldest first, one page (the API's cursor and export go on):
    a submitter's own submissions, an admin's of every key."""
    state, key = who(request)
    if key is None:
        return to_signin(request)
    query = BookQuery(
        set=set_name or None,
        challenge=challenge or None,
        learner_id=learner_id or None,
        status=status or None,
    )
    owner = None if has_role(key, Role.ADMIN) else key.id
    found = await run_in_threadpool(
        lambda: state.store.book.page(owner, query.keeps, limit=SUBMISSIONS_PER_PAGE)
    )
    full = has_role(key, Role.INSTRUCTOR)
    rows = [row(s.shown(full=full)) for s in found.submissions]
    return secured(
        page(
            request,
            "submissions.html",
            key=key,
            csrf=csrf_token(request),
            rows=rows,
            query=query,
            more=found.cursor is not None,
        )
    )
