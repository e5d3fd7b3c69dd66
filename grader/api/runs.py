"""``/v1/runs``: run code without a challenge in the same hardened sandbox; the observation is
the result.

Allowed to instructor and admin keys, and to any key with ``runs: true``; counted against the
key's rate limit like a submission. Stored and queued as a submission record with ``run`` set
(``domain/runs.py``), so it is as durable as one, long-polls the same way and calls back the
same way (signed webhook, the ``RunRecord`` as its body).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack, suppress
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..adapters.store import new_id
from ..adapters.webhooks import check_callback_url
from ..domain.files import check_files
from ..domain.limits import resolve_limits
from ..domain.runs import RUN_CHALLENGE_ID, RunCreate, RunRecord, run_record
from ..domain.submission import Role, Submission, SubmissionStatus
from ..errors import Forbidden, NotFound, Rejected, StoreError
from ..settings import ApiKey
from .errors import ErrorBody, error_responses
from .security import has_role
from .state import ApiState, api_state, current_key
from .waiting import FINAL, until_final, wait_final

router = APIRouter(
    prefix="/v1",
    tags=["runs"],
    responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503),
)


def may_run(key: ApiKey) -> bool:
    """Whether ``key`` may run code without a challenge."""
    return key.runs or has_role(key, Role.INSTRUCTOR)


def _admit(state: ApiState, key: ApiKey, body: RunCreate) -> None:
    """Every check of a raw run's body before anything is stored (404, 413, 422)."""
    api = state.settings.api
    if body.environment not in state.environments:
        known = ", ".join(sorted(state.environments))
        raise NotFound(f"no environment {body.environment!r}; known: {known}")
    check_files(body.files, entry=body.entry, max_files=api.max_files, max_bytes=api.max_code_bytes)
    if len(body.stdin.encode()) > api.max_stdin_bytes:
        raise Rejected(f"stdin is larger than {api.max_stdin_bytes} bytes", 413)
    sandbox = state.settings.sandbox
    resolve_limits(sandbox.defaults, sandbox.maxima, body.limits)  # LimitsError: 422
    if body.callback_url is not None:
        if not key.webhook_secret:
            raise Rejected("this API key has no webhook secret, so it cannot use callback_url")
        check_callback_url(body.callback_url, api.webhook_allow_hosts)


def _accept(
    state: ApiState, key: ApiKey, body: RunCreate, idempotency_key: str | None, run_id: str
) -> tuple[Submission, bool]:
    """Check, count, store and queue one raw run (blocking: runs in the thread pool).

    A key that may not run is refused before it is counted.
    """
    if not may_run(key):
        raise Forbidden(
            f"key {key.id!r} may not run code without a challenge: that needs the instructor "
            "role or 'runs: true' on the key"
        )
    state.limiter.hit(key)
    _admit(state, key, body)
    record = Submission(
        id=run_id,
        key_id=key.id,
        challenge_id=RUN_CHALLENGE_ID,
        environment=body.environment,
        run=body.raw(),
        callback_url=body.callback_url,
        metadata=body.metadata,
    )
    stored, created = state.store.create(record, idempotency_key)
    if stored.run is None:
        raise Rejected("this Idempotency-Key was used for a submission, not a run", 409)
    if created or (stored.status is SubmissionStatus.QUEUED and state.store.run_unsent(stored.id)):
        # Sent, then out of the outbox; failing to take it out only means a second send,
        # which runs nothing twice (a pickup of a final record runs nothing).
        state.queue.enqueue_run(stored.id, body.environment)
        with suppress(StoreError):
            state.store.run_queued(stored.id)
    return stored, created


@router.post(
    "/runs",
    status_code=202,
    summary="Run code without a challenge",
    response_model=RunRecord,
    responses={
        200: {"model": RunRecord, "description": "A replay, or a run awaited with wait"},
        409: {"model": ErrorBody, "description": "The Idempotency-Key names a submission"},
    },
)
async def create_run(
    request: Request,
    body: RunCreate,
    key: Annotated[ApiKey, Depends(current_key)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Seconds to wait for the result before answering")
    ] = 0,
) -> JSONResponse:
    """Queue a raw run: 202 with its id; 200 for a replay or a result awaited with ``wait``.

    The files are laid out in the sandbox's work directory; ``entry`` runs as a script, or
    under pytest with ``mode: pytest``, reading ``stdin``. The answer's ``observation`` is
    what it did: stdout, stderr, exit code, exception, time, and whether a limit stopped it.
    """
    state = api_state(request)
    run_id = new_id()
    deadline = time.monotonic() + min(wait, state.settings.api.max_wait_seconds)
    async with AsyncExitStack() as stack:
        announcements = (
            await stack.enter_async_context(state.completions.watch(run_id)) if wait > 0 else None
        )
        record, created = await run_in_threadpool(
            _accept, state, key, body, idempotency_key, run_id
        )
        if announcements is not None and created:
            record = await _until_final(announcements, state, key, record, deadline)
    if wait > 0 and not created and record.status not in FINAL:
        record = await _wait(state, key, record.id, deadline - time.monotonic())
    finished = wait > 0 and record.status in FINAL
    return JSONResponse(
        status_code=200 if finished or not created else 202,
        content=run_record(record),
        headers={"Location": f"/v1/runs/{record.id}"},
    )


@router.get(
    "/runs/{run_id}",
    summary="A raw run's status and observation (long-poll with ?wait=)",
    response_model=RunRecord,
)
async def get_run(
    request: Request,
    run_id: str,
    key: Annotated[ApiKey, Depends(current_key)],
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the result")] = 0,
) -> JSONResponse:
    """The run as it stands; with ``wait``, once it is finished or the seconds are up."""
    state = api_state(request)
    record = await _visible(state, key, run_id)
    if wait > 0 and record.status not in FINAL:
        record = await _wait(state, key, run_id, min(wait, state.settings.api.max_wait_seconds))
    return JSONResponse(content=run_record(record))


async def _visible(state: ApiState, key: ApiKey, run_id: str) -> Submission:
    return _shown_to(key, run_id, await run_in_threadpool(state.store.get, run_id))


def _shown_to(key: ApiKey, run_id: str, record: Submission | None) -> Submission:
    """The run, to the key that made it (and to admins); 404 for anything else."""
    if record is None or record.run is None:
        raise NotFound(f"no run {run_id!r}")
    if record.key_id != key.id and not has_role(key, Role.ADMIN):
        raise NotFound(f"no run {run_id!r}")
    return record


async def _wait(state: ApiState, key: ApiKey, run_id: str, seconds: float) -> Submission:
    return await wait_final(
        state.completions, state.store.get, partial(_shown_to, key), run_id, seconds
    )


async def _until_final(
    announcements: asyncio.Queue[bytes],
    state: ApiState,
    key: ApiKey,
    record: Submission,
    deadline: float,
) -> Submission:
    return await until_final(
        announcements, state.store.get, partial(_shown_to, key), record, deadline
    )
