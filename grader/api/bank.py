"""Instructors' side of ``/v1/challenges``: upload, replace, retire, validation, regrade.

An upload is checked by the loader at once (every problem, with line and field: 422), stored
as a new revision (its content hash) and ``validating`` until a worker has executed it as
``grader challenges validate`` does; only then can learners submit to it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..domain.bank import (
    ChallengeRecord,
    Revision,
    RevisionStatus,
)
from ..domain.challenge import Challenge
from ..domain.loader import SUFFIXES, LoadProblem, parse_challenge
from ..domain.submission import Role
from ..domain.validation import ChallengeReport, MatrixRow
from ..errors import ChallengeError, NotFound, Rejected
from ..settings import ApiKey
from .errors import error_responses
from .security import require
from .state import ApiState, api_state, current_key

router = APIRouter(
    prefix="/v1",
    tags=["challenge bank"],
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
T = TypeVar("T")
READABLE = frozenset(
    {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json"}
)
_PATH = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
POLL_SECONDS = 0.25
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "One challenge file, as YAML or JSON (docs/challenges.md)",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
PathQuery = Annotated[
    str | None,
    Query(
        max_length=201,
        description="The file as the loader would read it, '<set>/<file>.yaml': the folder "
        "and stem are the default set and id, and errors name it",
    ),
]
Wait = Annotated[float, Query(ge=0, le=30, description="Seconds to wait while it is running")]


class UploadAnswer(BaseModel):
    """Where an uploaded challenge stands."""

    id: str
    revision: str
    status: RevisionStatus
    new: bool
    """False: the challenge already had exactly this content (nothing was stored)."""
    published: str | None
    """The revision learners submit to now (an earlier one while this one is validating)."""
    validation: str


class ValidationAnswer(BaseModel):
    """A revision's validation by execution: its status and every check."""

    id: str
    revision: str
    status: RevisionStatus
    source: str
    head: str
    published: str | None
    retired: bool
    uploaded_at: str
    validated_at: str | None
    ok: bool | None
    summary: str
    """The failed checks, one per line (empty unless rejected)."""
    report: ChallengeReport | None
    revisions: list[str]


class MatrixAnswer(BaseModel):
    """A revision's code run in every environment, when it was validated."""

    id: str
    revision: str
    status: RevisionStatus
    matrix: MatrixRow | None
    differs: bool | None


async def instructor(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
    require(key, Role.INSTRUCTOR)
    return key


Instructor = Annotated[ApiKey, Depends(instructor)]


async def _text(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in READABLE:
        raise Rejected(
            "send the challenge as YAML (Content-Type: application/yaml) or JSON "
            f"(application/json), not {kind or 'a body without a Content-Type'}",
            415,
        )
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("the body is not UTF-8 text") from None


def _source(text: str, path: str | None, url_id: str | None) -> Path:
    """The file name the loader checks the upload as (defaults and messages come from it)."""
    if path is not None:
        if not _PATH.fullmatch(path) or not path.endswith((*SUFFIXES, ".json")):
            raise Rejected(
                f"path {path!r} is not '<set>/<file>.yaml' (or .yml, .json): one folder, "
                "one file, letters, digits, '.', '_' and '-'",
                422,
            )
        return Path(path)
    if url_id is not None:
        return Path(f"{url_id}.yaml")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return Path("upload/upload.yaml")  # the loader reports the YAML error
    named = data if isinstance(data, dict) else {}
    missing = [n for n in ("set", "id") if not isinstance(named.get(n), str)]
    if isinstance(data, dict) and missing:
        problem = LoadProblem(
            Path("upload.yaml"),  # shown, never opened
            1,
            f"an upload names its {' and '.join(missing)}: add "
            f"{', '.join(f'{n}:' for n in missing)} or send ?path=<set>/<file>.yaml",
            missing[0],
        )
        raise _refusal([problem])
    return Path(f"{named.get('set', 'upload')}/{named.get('id', 'upload')}.yaml")


def _refusal(problems: list[LoadProblem]) -> ChallengeError:
    listed = [
        {"file": str(p.path), "line": str(p.line), "field": p.field or "", "message": p.message}
        for p in problems
    ]
    return ChallengeError("\n".join(str(p) for p in problems), problems=listed)


def _no_aliases(text: str, source: Path) -> None:
    """YAML anchors and aliases can make a small body expand without bound: not accepted."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else 1
                message = "YAML aliases (*name) are not accepted in uploads; write the value"
                problem = LoadProblem(source, line, message)
                raise _refusal([problem])
    except yaml.YAMLError:
        return  # the loader reports it, with its line


def parse_upload(
    state: ApiState, text: str, path: str | None, url_id: str | None = None
) -> Challenge:
    """The uploaded challenge, or a ``ChallengeError`` naming every problem (422)."""
    source = _source(text, path, url_id)
    _no_aliases(text, source)
    challenge, problems = parse_challenge(text, source, state.environments)
    if problems or challenge is None:
        raise _refusal(problems)
    if url_id is not None and challenge.qualified_id != url_id:
        raise Rejected(
            f"the body is challenge {challenge.qualified_id!r}, the URL names {url_id!r}", 422
        )
    return challenge


def store_upload(
    state: ApiState, key: ApiKey, challenge: Challenge, *, create: bool
) -> UploadAnswer:
    doc, new = state.bank.upload(challenge, uploaded_by=key.id, create=create)
    if doc.status is RevisionStatus.VALIDATING:  # again on a repeat: its task may be lost
        state.queue.enqueue_validation(doc.revision, challenge.environment)
    record = state.bank.record(challenge.qualified_id)
    return UploadAnswer(
        id=challenge.qualified_id,
        revision=doc.revision,
        status=doc.status,
        new=new,
        published=record.published if record is not None else None,
        validation=f"/v1/challenges/{challenge.qualified_id}/validation?revision={doc.revision}",
    )


def _answer(answer: UploadAnswer) -> JSONResponse:
    status = 202 if answer.status is RevisionStatus.VALIDATING and answer.new else 200
    return JSONResponse(status_code=status, content=answer.model_dump(mode="json"))


_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": UploadAnswer, "description": "Unchanged, or a revision already decided"},
    202: {"model": UploadAnswer, "description": "Stored; validating"},
    **error_responses(413, 415),
}


@router.post(
    "/challenges",
    status_code=202,
    summary="Upload a new challenge (instructor): validated by execution, then published",
    responses={**_UPLOAD_RESPONSES, **error_responses(409)},
    openapi_extra=_BODY_DOC,
)
async def create_challenge(
    request: Request, key: Instructor, path: PathQuery = None
) -> JSONResponse:
    """202 ``validating``; 409 if it exists (PUT replaces); 422 with every problem of the file."""
    state = api_state(request)
    text = await _text(request)
    challenge = await run_in_threadpool(parse_upload, state, text, path)
    return _answer(await run_in_threadpool(store_upload, state, key, challenge, create=True))


@router.put(
    "/challenges/{set_name}/{challenge_id}",
    status_code=202,
    summary="Upload a new revision of a challenge, or create it (instructor)",
    responses=_UPLOAD_RESPONSES,
    openapi_extra=_BODY_DOC,
)
async def replace_challenge(
    request: Request, set_name: str, challenge_id: str, key: Instructor, path: PathQuery = None
) -> JSONResponse:
    """202 ``validating`` (the published revision stays until this one passes); 200 unchanged."""
    state = api_state(request)
    text = await _text(request)
    url_id = f"{set_name}/{challenge_id}"
    challenge = await run_in_threadpool(parse_upload, state, text, path, url_id)
    return _answer(await run_in_threadpool(store_upload, state, key, challenge, create=False))


@router.delete(
    "/challenges/{set_name}/{challenge_id}",
    summary="Retire a challenge (instructor): no new submissions; its revisions are kept",
)
async def retire_challenge(
    request: Request, set_name: str, challenge_id: str, key: Instructor
) -> ChallengeRecord:
    state = api_state(request)
    return await run_in_threadpool(state.bank.retire, f"{set_name}/{challenge_id}")


def _revision(
    state: ApiState, challenge_id: str, revision: str | None
) -> tuple[Revision, ChallengeRecord]:
    record = state.bank.record(challenge_id)
    if record is None:
        raise NotFound(f"no challenge {challenge_id!r} in the bank")
    wanted = revision or record.head
    doc = state.bank.revision(wanted) if wanted in record.revisions else None
    if doc is None:
        raise NotFound(f"challenge {challenge_id!r} has no revision {wanted!r}")
    return doc, record


async def poll(read: Callable[[], T], done: Callable[[T], bool], seconds: float) -> T:
    """``read()`` until ``done`` or ``seconds`` have passed (the bank is read, not watched)."""
    deadline = time.monotonic() + seconds
    found = await run_in_threadpool(read)
    while not done(found) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        found = await run_in_threadpool(read)
    return found


RevisionQuery = Annotated[
    str | None, Query(pattern=r"^[0-9a-f]{16}$", description="Default: the latest upload")
]


@router.get(
    "/challenges/{set_name}/{challenge_id}/validation",
    summary="A revision's validation report (instructor)",
)
async def get_validation(
    request: Request,
    set_name: str,
    challenge_id: str,
    key: Instructor,
    revision: RevisionQuery = None,
    wait: Wait = 0,
) -> ValidationAnswer:
    """With ``wait``, answers once the revision is decided, or after that many seconds."""
    state = api_state(request)
    qid = f"{set_name}/{challenge_id}"
    doc, record = await poll(
        lambda: _revision(state, qid, revision),
        lambda found: found[0].status is not RevisionStatus.VALIDATING,
        min(wait, state.settings.api.max_wait_seconds),
    )
    return ValidationAnswer(
        id=qid,
        revision=doc.revision,
        status=doc.status,
        source=doc.source.value,
        head=record.head,
        published=record.published,
        retired=record.retired,
        uploaded_at=doc.uploaded_at.isoformat(),
        validated_at=doc.validated_at.isoformat() if doc.validated_at else None,
        ok=doc.report.ok if doc.report is not None else None,
        summary=doc.summary(),
        report=doc.report,
        revisions=record.revisions,
    )


@router.get(
    "/challenges/{set_name}/{challenge_id}/matrix",
    summary="A revision's outcome in every environment, run when it was validated (instructor)",
)
async def get_matrix(
    request: Request,
    set_name: str,
    challenge_id: str,
    key: Instructor,
    revision: RevisionQuery = None,
) -> MatrixAnswer:
    state = api_state(request)
    qid = f"{set_name}/{challenge_id}"
    doc, _ = await run_in_threadpool(_revision, state, qid, revision)
    return MatrixAnswer(
        id=qid,
        revision=doc.revision,
        status=doc.status,
        matrix=doc.matrix,
        differs=doc.matrix.differs if doc.matrix is not None else None,
    )
