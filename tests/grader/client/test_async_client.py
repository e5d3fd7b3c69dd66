"""``grader.client.AsyncClient``: the same calls as ``Client``, on asyncio."""

from __future__ import annotations

import httpx
import pytest

from grader.api.app import create_app
from grader.client import ApiError, AsyncClient, RetryPolicy, Unreachable
from grader.domain.submission import SubmissionStatus
from grader.domain.verdict import VerdictStatus
from grader.testing import SUBMITTER_KEY, free_port, service_settings

from .support import CHALLENGE, ENV, ScriptedApi, error, ok, run_record, submission

pytestmark = pytest.mark.asyncio


def client(api: ScriptedApi, slept: list[float], attempts: int = 5) -> AsyncClient:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return AsyncClient(
        "http://grader.test",
        "grd_key",
        transport=api.asynchronous(),
        sleep=sleep,
        retry=RetryPolicy(attempts=attempts),
    )


async def test_submit_retries_a_429_after_retry_after_then_waits_for_the_verdict() -> None:
    """429 (Retry-After 2) -> the same POST again -> long-poll until done."""
    slept: list[float] = []
    api = ScriptedApi(
        [
            error(429, "rate_limited", "slow down", **{"Retry-After": "2"}),
            ok(submission(), 202),
            ok(submission(SubmissionStatus.DONE, VerdictStatus.PASSED)),
        ]
    )
    async with client(api, slept) as grader:
        answer = await grader.submit(CHALLENGE, "print(2)", wait=True)
    assert answer.result is not None and answer.result.status is VerdictStatus.PASSED
    assert slept == [2.0]
    keys = {r.headers["Idempotency-Key"] for r in api.requests[:2]}
    assert len(keys) == 1
    assert [r.method for r in api.requests] == ["POST", "POST", "GET"]


async def test_errors_and_no_answer_are_raised_as_in_the_sync_client() -> None:
    """A 401 is ApiError at once; refused connections end in Unreachable."""
    request = httpx.Request("GET", "http://grader.test/v1/environments")
    api = ScriptedApi(
        [
            error(401, "unauthorized", "unknown API key"),
            httpx.ConnectError("refused", request=request),
            httpx.ConnectError("refused", request=request),
        ]
    )
    slept: list[float] = []
    async with client(api, slept, attempts=2) as grader:
        with pytest.raises(ApiError) as raised:
            await grader.get("s1")
        with pytest.raises(Unreachable):
            await grader.environments()
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")
    assert len(api.requests) == 3 and len(slept) == 1


async def test_run_and_result() -> None:
    """A raw run returns its observation; a result comes back in the asked format."""
    api = ScriptedApi([ok(run_record("done")), ok({"score": 1.0, "tests": []})])
    async with client(api, []) as grader:
        record = await grader.run(ENV, "print(2)")
        document = await grader.result("s1", format="gradescope")
    assert record.observation is not None and record.observation.stdout.text == "2\n"
    assert document == {"score": 1.0, "tests": []}
    assert api.params() == [{"wait": "30.0"}, {"format": "gradescope"}]


async def test_the_apis_own_503_is_retried_after_its_retry_after() -> None:
    """The real app with its Redis gone: each try answers 503 with Retry-After 2, which the
    client sleeps before the next; after the last, the API's error is raised."""
    app = create_app(service_settings(f"redis://127.0.0.1:{free_port()}/0"))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    grader = AsyncClient(
        "http://grader",
        SUBMITTER_KEY,
        transport=httpx.ASGITransport(app=app),
        sleep=sleep,
        retry=RetryPolicy(attempts=3),
    )
    async with grader:
        with pytest.raises(ApiError) as raised:
            await grader.submit(CHALLENGE, "x = 1\n")
    await app.state.grader.completions.close()
    app.state.grader.store.close()
    assert (raised.value.status, raised.value.code) == (503, "unavailable")
    assert slept == [2.0, 2.0]
