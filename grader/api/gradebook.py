"""The gradebook: ``GET /v1/submissions`` (filtered, cursor-paginated), its CSV and JSON Lines
export, and per-challenge statistics. Admin keys see every key's submissions; any other key
its own. Instructors read results whole; submitters as their learners would (``feedback``).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel

from ..adapters.book import Cursor
from ..domain.gradebook import COLUMNS, row, statistics
from ..domain.gradebook import Query as BookQuery
from ..domain.submission import Role, Submission
from ..settings import ApiKey
from .errors import error_responses
from .security import has_role
from .state import ApiState, api_state, current_key

router = APIRouter(prefix="/v1", tags=["gradebook"], responses=error_responses(401, 422, 503))
EXPORT_MAX_ROWS = 100_000
"""An export or a statistics query reads at most this many submissions (then says so)."""


class Row(BaseModel):
    """One submission in the gradebook."""

    id: str
    key_id: str
    learner_id: str | None
    set: str
    challenge_id: str
    status: str
    result: str | None
    score: float | None
    points: float | None
    max_points: float | None
    attempt: int | None
    attempts_left: int | None
    late: bool
    badge: str | None
    exception: str | None
    reason: str | None
    created_at: str
    finished_at: str | None


class GradebookPage(BaseModel):
    submissions: list[Row]
    count: int
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null at the end."""


class AttemptsToPass(BaseModel):
    mean: float | None
    counts: dict[str, int]


class ExceptionCount(BaseModel):
    type: str
    count: int


class ChallengeStatistics(BaseModel):
    challenge_id: str
    submissions: int
    graded: int
    passed: int
    pass_rate: float | None
    learners: int
    learners_passed: int
    attempts_to_pass: AttemptsToPass
    exceptions: list[ExceptionCount]


class Statistics(BaseModel):
    challenges: list[ChallengeStatistics]
    submissions: int
    truncated: bool
    """True when more than ``EXPORT_MAX_ROWS`` submissions matched: narrow the query."""


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _query(
    set: Annotated[str | None, Query(max_length=100, description="Only this set")] = None,
    challenge: Annotated[
        str | None, Query(max_length=130, description="A challenge: 'set/id', or 'id' with set")
    ] = None,
    learner_id: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=40,
            description="The result's status (passed, failed, error, ...) or, before there is "
            "one, the lifecycle's (queued, running)",
        ),
    ] = None,
) -> BookQuery:
    return BookQuery(set=set, challenge=challenge, learner_id=learner_id, status=status)


Selection = Annotated[BookQuery, Depends(_query)]
Since = Annotated[
    datetime | None, Query(description="Only submissions created at or after (ISO 8601)")
]


def _owner(key: ApiKey) -> str | None:
    return None if has_role(key, Role.ADMIN) else key.id


def _rows(key: ApiKey, submissions: list[Submission]) -> list[dict[str, Any]]:
    full = has_role(key, Role.INSTRUCTOR)
    return [row(s.shown(full=full)) for s in submissions]


def _all(
    state: ApiState, key: ApiKey, query: BookQuery, since: datetime | None
) -> tuple[list[Submission], bool]:
    found: list[Submission] = []
    after: Cursor | None = None
    while len(found) < EXPORT_MAX_ROWS:
        page = state.store.book.page(
            _owner(key), query.keeps, since=since, after=after, limit=500, scan=20_000
        )
        found += page.submissions
        if page.cursor is None:
            return found, False
        after = page.cursor
    return found[:EXPORT_MAX_ROWS], True


@router.get("/submissions", summary="The gradebook: submissions by set, challenge, learner, status")
async def list_submissions(
    request: Request,
    key: Annotated[ApiKey, Depends(current_key)],
    query: Selection,
    since: Since = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> GradebookPage:
    """Oldest first, one page at a time; ``next_cursor`` continues (null at the end). A page
    may be shorter than ``limit`` and still have a cursor: keep going until it is null."""
    state = api_state(request)
    try:
        after = Cursor.decode(cursor) if cursor is not None else None
    except ValueError as exc:
        problem = {"loc": ("query", "cursor"), "msg": str(exc), "type": "value_error"}
        raise RequestValidationError([problem]) from None
    page = await run_in_threadpool(
        state.store.book.page, _owner(key), query.keeps, since=since, after=after, limit=limit
    )
    rows = _rows(key, page.submissions)
    return GradebookPage(
        submissions=[Row.model_validate(r) for r in rows],
        count=len(rows),
        next_cursor=page.cursor.encode() if page.cursor is not None else None,
    )


@router.get(
    "/gradebook/export",
    summary="Export the gradebook as CSV or JSON Lines",
    response_class=Response,
    responses={
        200: {
            "description": "Every row of the query, as CSV (with a header) or JSON Lines",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def export_gradebook(
    request: Request,
    key: Annotated[ApiKey, Depends(current_key)],
    query: Selection,
    since: Since = None,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.CSV,
) -> Response:
    """Every submission the same query selects, oldest first (at most ``EXPORT_MAX_ROWS``;
    ``X-Grader-Truncated: true`` when there were more)."""
    state = api_state(request)
    submissions, truncated = await run_in_threadpool(_all, state, key, query, since)
    rows = _rows(key, submissions)
    headers = {"X-Grader-Truncated": "true" if truncated else "false"}
    if export_format is ExportFormat.JSONL:
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        headers["Content-Disposition"] = 'attachment; filename="gradebook.jsonl"'
        return Response(body, media_type="application/x-ndjson", headers=headers)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    headers["Content-Disposition"] = 'attachment; filename="gradebook.csv"'
    return Response(out.getvalue(), media_type="text/csv", headers=headers)


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: learner-controlled strings (ids, error
    messages) that start like a formula are prefixed with ``'`` (OWASP's CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.get("/gradebook/stats", summary="Per-challenge statistics of the same query")
async def gradebook_stats(
    request: Request,
    key: Annotated[ApiKey, Depends(current_key)],
    query: Selection,
    since: Since = None,
) -> Statistics:
    """Submissions, pass rate, attempts to pass and the most common exception types."""
    state = api_state(request)
    submissions, truncated = await run_in_threadpool(_all, state, key, query, since)
    return Statistics.model_validate(
        {
            "challenges": statistics(submissions),
            "submissions": len(submissions),
            "truncated": truncated,
        }
    )
