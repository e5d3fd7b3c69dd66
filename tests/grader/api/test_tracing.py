"""Request ids and HTTP metrics, through the app on the real Redis (no worker)."""

from __future__ import annotations

import pytest
import redis
from fastapi import FastAPI

from grader.adapters.redis_keys import SUBMISSION
from grader.api.tracing import REQUEST_ID_HEADER, request_id_of
from grader.domain.submission import Submission
from grader.testing import SUBMITTER_KEY, RedisServer

from .conftest import client_for

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
Q4 = "async-test-mastery/q4-counter-after-test"


@pytest.mark.parametrize("given", ["abc", "req-1.2:3_x", "A" * 128])
def test_a_plain_token_is_kept(given: str) -> None:
    assert request_id_of(given) == given


@pytest.mark.parametrize(
    "given",
    [None, "", "A" * 129, "two words", 'x"}\n{"level":"error"', "é", "a/b", "x\r\nSet-Cookie: y"],
)
def test_anything_else_gets_a_fresh_id(given: str | None) -> None:
    """A header that could break a log line or a response header is never echoed."""
    fresh = request_id_of(given)
    assert fresh != given
    assert len(fresh) == 32
    assert all(c in "0123456789abcdef" for c in fresh)


@pytest.mark.asyncio
async def test_the_response_echoes_the_callers_id(app: FastAPI) -> None:
    async with client_for(app) as client:
        response = await client.get("/healthz", headers={REQUEST_ID_HEADER: "probe-17"})
    assert response.headers[REQUEST_ID_HEADER] == "probe-17"


@pytest.mark.asyncio
async def test_every_answer_gets_an_id_even_a_refusal(app: FastAPI) -> None:
    """No header, a 401 and a 413 (refused before any route) all carry a fresh id each."""
    async with client_for(app) as client:
        plain = await client.get("/healthz")
        refused = await client.get("/v1/challenges")
        too_large = await client.post(
            "/v1/submissions", headers=SUBMITTER, content=b"x" * (2 * 1024 * 1024)
        )
    ids = [r.headers[REQUEST_ID_HEADER] for r in (plain, refused, too_large)]
    assert [refused.status_code, too_large.status_code] == [401, 413]
    assert len(set(ids)) == 3
    assert all(len(i) == 32 for i in ids)


@pytest.mark.asyncio
async def test_a_submission_records_the_request_id(app: FastAPI, redis_server: RedisServer) -> None:
    """The worker reads it from the stored submission; the submitter is not shown it."""
    async with client_for(app) as client:
        response = await client.post(
            "/v1/submissions",
            headers={**SUBMITTER, REQUEST_ID_HEADER: "trace-me-1"},
            json={"challenge_id": Q4, "code": "counter = 3\n"},
        )
    assert response.status_code == 202
    assert response.headers[REQUEST_ID_HEADER] == "trace-me-1"
    assert "request_id" not in response.json()
    raw = redis.Redis.from_url(redis_server.url).get(f"{SUBMISSION}{response.json()['id']}")
    assert raw is not None
    assert Submission.model_validate_json(raw).request_id == "trace-me-1"


@pytest.mark.asyncio
async def test_http_metrics_count_by_route_template(app: FastAPI) -> None:
    async with client_for(app) as client:
        for _ in range(2):
            await client.get("/v1/submissions/does-not-exist", headers=SUBMITTER)
        await client.get("/no/such/route")
        metrics = (await client.get("/metrics")).text
    assert (
        'grader_http_requests_total{method="GET",route="/v1/submissions/{submission_id}",'
        'status="404"} 2.0' in metrics
    )
    assert 'grader_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in metrics
    assert (
        'grader_http_request_duration_seconds_count{method="GET",'
        'route="/v1/submissions/{submission_id}"} 2.0' in metrics
    )
