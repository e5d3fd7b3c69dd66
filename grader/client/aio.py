"""``AsyncClient``: the API from Python on asyncio (httpx), call for call like ``Client``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from tenacity import AsyncRetrying

from .. import __version__
from ..api.models import (
    BatchAnswer,
    ChallengeList,
    EnvironmentInfo,
    EnvironmentList,
    PublicChallenge,
    PublicSubmission,
)
from ..domain.exporters import ResultFormat
from ..domain.observation import Limits, RunMode
from . import core
from .core import Call, Deadline, RetryPolicy, RunRecord


class AsyncClient:
    """A Grader API client on asyncio: ``async with AsyncClient(url, key) as grader:``.

    Every call is retried on 429 and 503 (after ``Retry-After``) and on lost connections, per
    ``retry``; what still fails raises ``ApiError`` (the API said no) or ``Unreachable``.
    """

    def __init__(
        self,
        base_url: str = core.DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=core.headers_for(api_key, f"grader-client/{__version__}"),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # submissions ------------------------------------------------------------------------------

    async def submit(
        self,
        challenge_id: str,
        code: str | None = None,
        *,
        files: Mapping[str, str] | None = None,
        choice: str | None = None,
        learner_id: str | None = None,
        callback_url: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait: bool | float = False,
    ) -> PublicSubmission:
        """Submit code, several ``files`` (where the challenge allows) or a choice.
        ``wait=True`` returns once the verdict is in; a number
        waits at most that many seconds (the submission may then still be running)."""
        deadline = Deadline(core.wait_seconds(wait))
        call = core.submit_call(
            challenge_id,
            code=code,
            files=files,
            choice=choice,
            learner_id=learner_id,
            callback_url=callback_url,
            metadata=metadata,
            idempotency_key=idempotency_key,
            wait=deadline.next_wait() if wait is not False else 0,
            timeout=self.timeout,
        )
        submission = core.parse(PublicSubmission, await self._send(call))
        if wait is False or submission.final:
            return submission
        return await self._until_final(submission, deadline)

    async def submit_batch(self, submissions: list[Mapping[str, Any]]) -> BatchAnswer:
        """Submit several at once (``{challenge_id, code | choice, ...}`` each)."""
        call = Call(
            "POST",
            "/v1/submissions/batch",
            body={"submissions": list(submissions)},
            replayable=False,
        )
        return core.parse(BatchAnswer, await self._send(call))

    async def get(self, submission_id: str, *, wait: float = 0) -> PublicSubmission:
        """The submission as it stands (after up to ``wait`` seconds, at most 30, if not final)."""
        call = core.get_call(
            f"/v1/submissions/{submission_id}", wait=min(wait, 30), timeout=self.timeout
        )
        return core.parse(PublicSubmission, await self._send(call))

    async def wait(self, submission_id: str, *, timeout: float | None = None) -> PublicSubmission:
        """Long-poll until the submission is final (or ``timeout`` seconds have passed)."""
        deadline = Deadline(timeout)
        return await self._until_final(
            await self.get(submission_id, wait=deadline.next_wait()), deadline
        )

    async def result(
        self,
        submission_id: str,
        *,
        format: ResultFormat | str = ResultFormat.GRADER,
        wait: float = 0,
    ) -> dict[str, Any]:
        """The result document in ``format`` (grader, exercism-v3, gradescope, prairielearn),
        as the platform stores it. A format other than grader is a 409 ``ApiError`` while the
        submission is not finished (code ``not_finished``)."""
        call = core.get_call(
            f"/v1/submissions/{submission_id}",
            wait=min(wait, 30),
            timeout=self.timeout,
            format=ResultFormat(format).value,
        )
        document: dict[str, Any] = (await self._send(call)).json()
        return document

    async def _until_final(
        self, submission: PublicSubmission, deadline: Deadline
    ) -> PublicSubmission:
        while not submission.final and not deadline.over():
            submission = await self.get(submission.id, wait=deadline.next_wait())
        return submission

    # raw runs ---------------------------------------------------------------------------------

    async def run(
        self,
        environment: str,
        files: Mapping[str, str] | str,
        *,
        entry: str = "main.py",
        mode: RunMode | str = RunMode.SCRIPT,
        stdin: str | None = None,
        limits: Limits | Mapping[str, float] | None = None,
        idempotency_key: str | None = None,
        wait: bool | float = True,
    ) -> RunRecord:
        """Run code without a challenge in an environment: its observation once done.

        ``files`` maps paths to text, or is the source of ``entry`` alone.
        """
        deadline = Deadline(core.wait_seconds(wait))
        call = core.run_call(
            environment,
            {entry: files} if isinstance(files, str) else files,
            entry=entry,
            mode=mode,
            stdin=stdin,
            limits=limits,
            idempotency_key=idempotency_key,
            wait=deadline.next_wait() if wait is not False else 0,
            timeout=self.timeout,
        )
        record = core.parse(RunRecord, await self._send(call))
        while wait is not False and not record.final and not deadline.over():
            record = await self.get_run(record.id, wait=deadline.next_wait())
        return record

    async def get_run(self, run_id: str, *, wait: float = 0) -> RunRecord:
        call = core.get_call(f"/v1/runs/{run_id}", wait=min(wait, 30), timeout=self.timeout)
        return core.parse(RunRecord, await self._send(call))

    # catalog ----------------------------------------------------------------------------------

    async def challenges(self, set: str | None = None) -> list[PublicChallenge]:
        call = core.get_call("/v1/challenges", wait=0, timeout=self.timeout, set=set)
        return core.parse(ChallengeList, await self._send(call)).challenges

    async def challenge(self, challenge_id: str) -> PublicChallenge:
        """One challenge, by its ``<set>/<id>``."""
        call = core.get_call(f"/v1/challenges/{challenge_id}", wait=0, timeout=self.timeout)
        return core.parse(PublicChallenge, await self._send(call))

    async def environments(self) -> list[EnvironmentInfo]:
        call = core.get_call("/v1/environments", wait=0, timeout=self.timeout)
        return core.parse(EnvironmentList, await self._send(call)).environments

    # sending ----------------------------------------------------------------------------------

    async def _send(self, call: Call) -> httpx.Response:
        """Send ``call`` with retries; the successful response, or ``ApiError``/``Unreachable``."""
        retrying = AsyncRetrying(sleep=self._sleep, **self.retry.tenacity(call))
        try:
            return await retrying(self._try, call)
        except (core.Retryable, httpx.TransportError) as exc:
            raise core.final_error(exc, self.base_url) from None

    async def _try(self, call: Call) -> httpx.Response:
        response = await self._http.request(call.method, call.path, **call.send_args())
        return core.checked(response)
