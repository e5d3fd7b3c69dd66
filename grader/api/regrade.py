"""``/v1/challenges/{set}/{id}/regrade``: re-run stored submissions against the published
revision (or in another environment); list what would change, or record it beside the old."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..adapters.store import new_id
from ..domain.bank import RegradeJob, RegradeRequest, RegradeStatus
from ..errors import Conflict, NotFound, Rejected
from .bank import Instructor, Wait, poll
from .errors import error_responses
from .state import ApiState, api_state

router = APIRouter(
    prefix="/v1",
    tags=["challenge bank"],
    responses=error_responses(400, 401, 403, 404, 422, 503),
)


def _start_regrade(state: ApiState, qid: str, body: RegradeRequest, dry_run: bool) -> RegradeJob:
    record = state.bank.record(qid)
    if record is None:
        raise NotFound(f"no challenge {qid!r} in the bank")
    if record.published is None:
        raise Conflict(f"{qid!r} has no published revision to regrade against")
    target = state.bank.revision(record.published)
    if target is None:
        raise NotFound(f"the published revision of {qid!r} is missing")
    environment = body.environment or target.challenge.environment
    if environment not in state.environments:
        known = ", ".join(sorted(state.environments))
        raise Rejected(f"unknown environment {environment!r}; known: {known}", 422)
    job = RegradeJob(
        id=new_id(), challenge_id=qid, to_revision=record.published, request=body, dry_run=dry_run
    )
    state.bank.save_job(job)
    state.queue.enqueue_regrade(job.id, environment)
    return job


@router.post(
    "/challenges/{set_name}/{challenge_id}/regrade",
    status_code=202,
    summary="Re-run stored submissions against the published revision (instructor)",
    responses={202: {"model": RegradeJob}, **error_responses(409)},
)
async def start_regrade(
    request: Request,
    set_name: str,
    challenge_id: str,
    key: Instructor,
    body: Annotated[RegradeRequest, Body()] = RegradeRequest(),  # noqa: B008  never mutated
    dry_run: Annotated[
        bool, Query(description="Only list the verdicts that would change; record nothing")
    ] = False,
    wait: Wait = 0,
) -> JSONResponse:
    """202 with the job; with ``wait``, 200 once it has finished (or 202 after the seconds)."""
    state = api_state(request)
    qid = f"{set_name}/{challenge_id}"
    job = await run_in_threadpool(_start_regrade, state, qid, body, dry_run)
    job = await _job(state, qid, job.id, min(wait, state.settings.api.max_wait_seconds))
    code = 202 if job.status is RegradeStatus.RUNNING else 200
    return JSONResponse(status_code=code, content=job.model_dump(mode="json"))


async def _job(state: ApiState, qid: str, job_id: str, seconds: float) -> RegradeJob:
    def read() -> RegradeJob:
        found = state.bank.job(job_id)
        if found is None or found.challenge_id != qid:
            raise NotFound(f"no regrade {job_id!r} of {qid!r}")
        return found

    return await poll(read, lambda job: job.status is not RegradeStatus.RUNNING, seconds)


@router.get(
    "/challenges/{set_name}/{challenge_id}/regrades/{job_id}",
    summary="A regrade: what changed, or would (instructor)",
)
async def get_regrade(
    request: Request, set_name: str, challenge_id: str, job_id: str, key: Instructor, wait: Wait = 0
) -> RegradeJob:
    state = api_state(request)
    seconds = min(wait, state.settings.api.max_wait_seconds)
    return await _job(state, f"{set_name}/{challenge_id}", job_id, seconds)
