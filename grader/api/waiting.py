"""Waiting for a stored record to be final: what ``?wait=`` does for submissions and runs.

Watch first, then read, so no announcement is missed. The announcement carries the final
record; a second without one re-reads the store, so a missed announcement (Redis
restarting) costs a second, not a verdict. ``shown`` decides what the reader may see (a 404
for another key's record), the same rule as the route's own read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool

from ..adapters.completions import Completions
from ..domain.submission import Submission, SubmissionStatus

FINAL = (SubmissionStatus.DONE, SubmissionStatus.FAILED)
Read = Callable[[str], Submission | None]
Shown = Callable[[str, Submission | None], Submission]


def published(record_id: str, data: bytes | None) -> Submission | None:
    """The final record carried by an announcement, if it is one."""
    if data is None:
        return None
    try:
        record = Submission.model_validate_json(data)
    except ValueError:
        return None
    if record.id != record_id or record.status not in FINAL:
        return None
    return record


async def until_final(
    announcements: asyncio.Queue[bytes],
    read: Read,
    shown: Shown,
    record: Submission,
    deadline: float,
) -> Submission:
    """The record once final, or as it stands at the ``deadline`` (monotonic seconds)."""
    while record.status not in FINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            data: bytes | None = await asyncio.wait_for(announcements.get(), min(remaining, 1.0))
        except TimeoutError:
            data = None
        final = published(record.id, data)
        if final is not None:
            return shown(record.id, final)
        record = shown(record.id, await run_in_threadpool(read, record.id))
    return record


async def wait_final(
    completions: Completions, read: Read, shown: Shown, record_id: str, seconds: float
) -> Submission:
    """The record once final, or as it stands after ``seconds``."""
    deadline = time.monotonic() + seconds
    async with completions.watch(record_id) as announcements:
        record = shown(record_id, await run_in_threadpool(read, record_id))
        return await until_final(announcements, read, shown, record, deadline)
