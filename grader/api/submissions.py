"""``/v1/submissions``: accept code or a choice, queue it, report its lifecycle and result."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack, suppress
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..adapters.store import new_id
from ..adapters.webhooks import check_callback_url
from ..domain.bank import revision_of
from ..domain.challenge import Challenge
from ..domain.compare import grade_choice
from ..domain.exporters import NotExportable, ResultFormat, export
from ..domain.feedback import Terms, terms_for
from ..domain.files import check_files
from ..domain.grading import entry_file, refusal
from ..domain.submission import Role, Submission, SubmissionRequest, SubmissionStatus, now
from ..errors import (
    AttemptsExhausted,
    GraderError,
    NotFound,
    QueueError,
    Rejected,
    StoreError,
    UnsafeCallback,
)
from ..settings import ApiKey
from .errors import describe, error_body, error_responses
from .models import BatchAnswer, PublicSubmission
from .security import has_role
from .state import ApiState, api_state, current_key
from .tracing import current_request_id
from .waiting import FINAL, until_final, wait_final

router = APIRouter(
    prefix="/v1",
    tags=["submissions"],
    responses=error_responses(400, 401, 404, 413, 422, 429, 503),
)
_ADMISSION = error_responses(409)
_LOCATION = {"Location": {"description": "The submission's URL", "schema": {"type": "string"}}}


class BatchRequest(BaseModel):
    submissions: list[SubmissionRequest] = Field(min_length=1)


def _admit(state: ApiState, key: ApiKey, body: SubmissionRequest) -> Challenge:
    """Every check of one submission, before anything is stored: its challenge, or why not."""
    challenge = state.challenges.get(body.challenge_id)
    if challenge is None:
        raise NotFound(f"no challenge {body.challenge_id!r}; see GET /v1/challenges")
    if body.code is not None and len(body.code.encode()) > state.settings.api.max_code_bytes:
        raise Rejected(f"code is larger than {state.settings.api.max_code_bytes} bytes", 413)
    refused = refusal(
        challenge,
        code=body.code is not None,
        choice=body.choice is not None,
        files=body.files is not None,
    )
    if refused is not None:
        raise Rejected(refused)
    if body.files is not None and challenge.files is not None:
        check_files(
            body.files,
            entry=entry_file(challenge, challenge.expectation),
            max_files=min(challenge.files.max_files, state.settings.api.max_files),
            max_bytes=state.settings.api.max_code_bytes,
            allowed=challenge.files.allowed,
        )
    if body.callback_url is not None:
        if not key.webhook_secret:
            raise Rejected("this API key has no webhook secret, so it cannot use callback_url")
        check_callback_url(body.callback_url, state.settings.api.webhook_allow_hosts)
    return challenge


def _store_and_queue(
    state: ApiState,
    key: ApiKey,
    body: SubmissionRequest,
    challenge: Challenge,
    idempotency_key: str | None,
    submission_id: str,
) -> tuple[Submission, bool]:
    """Store an admitted submission and queue it (a choice is graded here instead).

    A replay (same ``Idempotency-Key``) of a submission whose task was never sent (the broker
    failed, or the API died, between storing and sending) sends it now.
    """
    submission = Submission(
        id=submission_id,
        key_id=key.id,
        challenge_id=challenge.qualified_id,
        revision=revision_of(challenge),
        environment=challenge.environment,
        code=body.code,
        files=body.files,
        choice=body.choice,
        learner_id=body.learner_id,
        callback_url=body.callback_url,
        metadata=body.metadata,
        request_id=current_request_id(),
    )

    def terms(attempt: int | None, opened_at: datetime | None, at: datetime) -> Terms:
        members = tuple(i for i, c in state.challenges.items() if c.set == challenge.set)
        return terms_for(
            challenge,
            state.sets.get(challenge.set),
            environment=challenge.environment,
            members=members,
            attempt=attempt,
            opened_at=opened_at,
            at=at,
        )

    gate = None
    if body.learner_id is None:  # no learner, no session: unbounded attempts, no deadline
        submission.terms = terms(None, None, now())
    else:
        gate = state.store.sessions.gate(
            key.id, body.learner_id, challenge.qualified_id, challenge.attempts, terms
        )
    stored, created = state.store.create(submission, idempotency_key, gate)
    if not created:
        if stored.status is SubmissionStatus.QUEUED and state.store.run_unsent(stored.id):
            _send_run(state, stored, stored.environment or challenge.environment)
        return stored, False
    if body.choice is not None:  # no code to run: graded here, against the key
        verdict = grade_choice(challenge, body.choice)
        stored.badge = state.store.sessions.settle(stored, verdict)
        state.store.finish(stored, verdict)
        if stored.callback_url:
            state.queue.enqueue_webhook(stored.id)
        return stored, True
    _send_run(state, stored, challenge.environment)
    return stored, True


def _send_run(state: ApiState, submission: Submission, environment: str) -> None:
    """Send the run task, then take the submission out of the outbox of runs.

    Once sent, failing to take it out is no error: a worker's pickup takes it out too, and a
    second task for one submission stores nothing twice (``store.complete`` leaves a final
    record alone, and a pickup of one runs nothing).
    """
    state.queue.enqueue_run(submission.id, environment)
    with suppress(StoreError):
        state.store.run_queued(submission.id)


def _limit_and_accept(
    state: ApiState,
    key: ApiKey,
    body: SubmissionRequest,
    idempotency_key: str | None,
    submission_id: str,
) -> tuple[Submission, bool]:
    """Count, check, store and queue one submission (blocking: runs in the thread pool)."""
    state.limiter.hit(key)
    challenge = _admit(state, key, body)
    return _store_and_queue(state, key, body, challenge, idempotency_key, submission_id)


def _accept_batch(
    state: ApiState, key: ApiKey, items: list[SubmissionRequest]
) -> list[dict[str, Any]]:
    """Check every item first, then store and queue the admitted ones, in order.

    A refused item is answered with its error and nothing of it is stored. Once storing or
    queueing fails (Redis or the broker is down), that item and every admitted one after it
    are answered ``unavailable``, the later ones without being tried: none of them was queued.
    """
    state.limiter.hit(key, len(items))
    outcomes: list[Challenge | GraderError] = []
    for item in items:
        try:
            outcomes.append(_admit(state, key, item))
        except (NotFound, Rejected, UnsafeCallback) as exc:
            outcomes.append(exc)
    results: list[Submission | GraderError] = []
    down: GraderError | None = None
    for item, admitted in zip(items, outcomes, strict=True):
        if isinstance(admitted, GraderError):
            results.append(admitted)
        elif down is not None:
            results.append(down)
        else:
            try:
                submission, _ = _store_and_queue(state, key, item, admitted, None, new_id())
            except (StoreError, QueueError) as exc:
                down = exc
                results.append(exc)
            except AttemptsExhausted as exc:
                results.append(exc)
            else:
                results.append(submission)
    full = has_role(key, Role.INSTRUCTOR)
    return [_item_answer(index, result, full) for index, result in enumerate(results)]


def _item_answer(index: int, result: Submission | GraderError, full: bool) -> dict[str, Any]:
    if isinstance(result, Submission):
        return {"index": index, **result.public(full=full)}
    _, code, message = describe(result)
    return {"index": index, "error": {"code": code, "message": message}}


@router.post(
    "/submissions",
    status_code=202,
    summary="Submit code or a choice",
    response_model=PublicSubmission,
    responses={
        200: {
            "model": PublicSubmission,
            "description": "An Idempotency-Key replay, or a verdict awaited with wait",
            "headers": _LOCATION,
        },
        202: {"description": "Queued (or still running after wait)", "headers": _LOCATION},
        **_ADMISSION,
    },
)
async def create_submission(
    request: Request,
    body: SubmissionRequest,
    key: Annotated[ApiKey, Depends(current_key)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Seconds to wait for the verdict before answering")
    ] = 0,
) -> JSONResponse:
    """Queue a submission: 202 with its id; 200 for a replay or a verdict awaited with ``wait``.

    The same ``Idempotency-Key`` returns the first submission (200). With ``wait`` the answer
    comes as soon as the verdict is stored (200), or after that many seconds with the
    submission as it then stands (202): one round trip instead of a POST and a long-poll.
    """
    state = api_state(request)
    submission_id = new_id()
    deadline = time.monotonic() + min(wait, state.settings.api.max_wait_seconds)
    async with AsyncExitStack() as stack:
        # With ?wait=, watched before the submission is queued, so its verdict cannot be
        # announced unseen: no second read is needed once it is accepted.
        announcements = (
            await stack.enter_async_context(state.completions.watch(submission_id))
            if wait > 0
            else None
        )
        submission, created = await run_in_threadpool(
            _limit_and_accept, state, key, body, idempotency_key, submission_id
        )
        if announcements is not None and created:
            submission = await _until_final(announcements, state, key, submission, deadline)
    if wait > 0 and not created and submission.status not in FINAL:  # replaying an earlier one
        submission = await _wait(state, key, submission.id, deadline - time.monotonic())
    waited_for_it = wait > 0 and submission.status in FINAL
    return JSONResponse(
        status_code=200 if waited_for_it or not created else 202,
        content=submission.public(full=has_role(key, Role.INSTRUCTOR)),
        headers={"Location": f"/v1/submissions/{submission.id}"},
    )


@router.post(
    "/submissions/batch",
    status_code=202,
    summary="Submit up to 50 at once",
    response_model=BatchAnswer,
)
async def create_batch(
    request: Request, body: BatchRequest, key: Annotated[ApiKey, Depends(current_key)]
) -> JSONResponse:
    """Queue several submissions: every item is checked before any is stored.

    202 with one answer per item, in order: the submission, or the error that kept it out.
    """
    state = api_state(request)
    if len(body.submissions) > state.settings.api.max_batch:
        raise Rejected(f"a batch holds at most {state.settings.api.max_batch} submissions", 413)
    answers = await run_in_threadpool(_accept_batch, state, key, body.submissions)
    return JSONResponse(status_code=202, content={"submissions": answers})


_FORMAT_HELP = (
    "The result's format: grader (this API's own), exercism-v3 (Exercism test-runner "
    "results.json v3), gradescope (Gradescope autograder results.json), prairielearn "
    "(PrairieLearn external grading results). Formats other than grader answer 409 for a "
    "submission that is not finished; see docs/api.md, 'Result formats'."
)


@router.get(
    "/submissions/{submission_id}",
    summary="Status and result (long-poll with ?wait=, other formats with ?format=)",
    response_model=PublicSubmission | dict[str, Any],
    responses={
        200: {"description": "The submission; with format other than grader, that document"},
        **error_responses(409),
    },
)
async def get_submission(
    request: Request,
    submission_id: str,
    key: Annotated[ApiKey, Depends(current_key)],
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the result")] = 0,
    result_format: Annotated[
        ResultFormat, Query(alias="format", description=_FORMAT_HELP)
    ] = ResultFormat.GRADER,
) -> JSONResponse:
    """The submission as it stands; with ``format``, its result as that platform reads it.

    With ``wait`` the answer comes when the result is stored or the seconds are up. A format
    other than ``grader`` is the platform's document alone (write it as its results file).
    """
    state = api_state(request)
    submission = await _visible(state, key, submission_id)
    if wait > 0 and submission.status not in FINAL:
        submission = await _wait(
            state, key, submission_id, min(wait, state.settings.api.max_wait_seconds)
        )
    full = has_role(key, Role.INSTRUCTOR)  # whole results; a submitter's are shaped by feedback
    try:
        if result_format is ResultFormat.GRADER:
            document = submission.public(full=full)
        else:
            document = export(submission.shown(full=full), result_format)
    except NotExportable as exc:
        return error_body(409, exc.code, str(exc))
    return JSONResponse(content=document)


async def _visible(state: ApiState, key: ApiKey, submission_id: str) -> Submission:
    submission = await run_in_threadpool(state.store.get, submission_id)
    return _shown_to(key, submission_id, submission)


def _shown_to(key: ApiKey, submission_id: str, submission: Submission | None) -> Submission:
    if submission is None or submission.run is not None:  # a raw run: GET /v1/runs/{id}
        raise NotFound(f"no submission {submission_id!r}")
    if submission.key_id != key.id and not has_role(key, Role.ADMIN):
        raise NotFound(f"no submission {submission_id!r}")
    return submission


async def _wait(state: ApiState, key: ApiKey, submission_id: str, seconds: float) -> Submission:
    return await wait_final(
        state.completions, state.store.get, partial(_shown_to, key), submission_id, seconds
    )


async def _until_final(
    announcements: asyncio.Queue[bytes],
    state: ApiState,
    key: ApiKey,
    submission: Submission,
    deadline: float,
) -> Submission:
    return await until_final(
        announcements, state.store.get, partial(_shown_to, key), submission, deadline
    )
