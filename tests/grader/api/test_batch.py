"""POST /v1/submissions/batch: every item is checked before any is stored; Redis shows it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import redis
from fastapi import FastAPI

from grader.adapters.redis_keys import SUBMISSION
from grader.api.errors import UNAVAILABLE
from grader.domain.submission import Submission
from grader.errors import QueueError
from grader.testing import INSTRUCTOR_KEY, SUBMITTER_KEY, RedisServer

from .conftest import Ledger, client_for

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
Q4 = "async-test-mastery/q4-counter-after-test"
Q5 = "async-test-mastery/q5-test-isolation"
PRIVATE_CALLBACK_REFUSED = (
    "callback host '10.0.0.1' resolves to 10.0.0.1, a private, loopback, link-local or "
    "reserved address; ask the operator to allow-list it"
)


@pytest.mark.asyncio
async def test_a_refused_third_item_is_answered_alone_and_the_others_are_queued(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], redis_server: RedisServer
) -> None:
    """A refused callback in item 3: items 1 and 2 are stored and queued, item 3 is not."""
    items = [
        {"challenge_id": Q4, "code": "x = 1\n"},
        {"challenge_id": Q4, "code": "x = 2\n"},
        {"challenge_id": Q4, "code": "x = 3\n", "callback_url": "http://10.0.0.1/hook"},
    ]
    before = ledger()
    response = await api.post(
        "/v1/submissions/batch", headers=SUBMITTER, json={"submissions": items}
    )
    after = ledger()
    assert response.status_code == 202
    answers = response.json()["submissions"]
    assert [(a["index"], a.get("status")) for a in answers] == [
        (0, "queued"),
        (1, "queued"),
        (2, None),
    ]
    assert answers[2] == {
        "index": 2,
        "error": {"code": "invalid", "message": PRIVATE_CALLBACK_REFUSED},
    }
    assert after == Ledger(stored=before.stored + 2, queued=before.queued + 2)
    client = redis.Redis.from_url(redis_server.url)
    for answer in answers[:2]:
        stored = client.get(f"{SUBMISSION}{answer['id']}")
        assert stored is not None
        assert Submission.model_validate_json(stored).status == "queued"
    client.close()


@pytest.mark.asyncio
async def test_every_kind_of_refusal_is_checked_before_anything_is_stored(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """Each item gets its own refusal (code and message); only the valid one is queued."""
    items = [
        {"challenge_id": "x/y", "code": "x = 1\n"},
        {"challenge_id": Q4, "code": "x" * (64 * 1024 + 1)},
        {"challenge_id": Q5, "code": "print(1)"},
        {"challenge_id": Q4, "code": "x = 1\n", "callback_url": "https://8.8.8.8/hook"},
        {"challenge_id": Q4, "code": "x = 1\n"},
    ]
    before = ledger()
    response = await api.post(
        "/v1/submissions/batch",
        headers={"Authorization": f"Bearer {INSTRUCTOR_KEY}"},  # a key without a webhook secret
        json={"submissions": items},
    )
    after = ledger()
    assert response.status_code == 202
    answers = response.json()["submissions"]
    assert [a.get("error") for a in answers] == [
        {"code": "not_found", "message": "no challenge 'x/y'; see GET /v1/challenges"},
        {"code": "too_large", "message": "code is larger than 65536 bytes"},
        {
            "code": "rejected",
            "message": f"{Q5} is answered by choice, not by code",
        },
        {
            "code": "rejected",
            "message": "this API key has no webhook secret, so it cannot use callback_url",
        },
        None,
    ]
    assert (answers[4]["index"], answers[4]["status"]) == (4, "queued")
    assert after == Ledger(stored=before.stored + 1, queued=before.queued + 1)


@pytest.mark.asyncio
async def test_a_schema_error_in_any_item_refuses_the_whole_batch(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """An item that is not valid JSON for us (NaN metadata) is a 422: nothing is stored."""
    items: list[dict[str, object]] = [{"challenge_id": Q4, "code": f"x = {n}"} for n in range(3)]
    items[2]["metadata"] = {"score": float("nan")}
    body = json.dumps({"submissions": items})  # Python writes NaN, as some clients do
    assert "NaN" in body
    before = ledger()
    response = await api.post(
        "/v1/submissions/batch",
        headers={**SUBMITTER, "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 422
    message = "Value error, must be a finite number (NaN, Infinity and 1e400 are not)"
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": f"submissions.2.metadata.score: {message}",
            "problems": [{"field": "submissions.2.metadata.score", "message": message}],
        }
    }
    assert ledger() == before


@pytest.mark.asyncio
async def test_once_the_queue_fails_the_rest_of_the_batch_is_unavailable(
    app: FastAPI, ledger: Callable[[], Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker refuses item 2: 1 is queued, 2 and 3 are unavailable, 4 keeps its refusal."""
    state = app.state.grader
    real_enqueue = state.queue.enqueue_run
    calls: list[str] = []

    def second_call_fails(submission_id: str, environment: str) -> None:
        calls.append(submission_id)
        if len(calls) == 2:
            raise QueueError("cannot queue grader.run_submission: Error 111 connecting to redis")
        real_enqueue(submission_id, environment)

    monkeypatch.setattr(state.queue, "enqueue_run", second_call_fails)
    items = [{"challenge_id": Q4, "code": f"x = {n}\n"} for n in range(3)]
    items.append({"challenge_id": "x/y", "code": "x = 1\n"})
    before = ledger()
    async with client_for(app) as client:
        response = await client.post(
            "/v1/submissions/batch", headers=SUBMITTER, json={"submissions": items}
        )
    after = ledger()
    assert response.status_code == 202
    answers = response.json()["submissions"]
    unavailable = {"code": "unavailable", "message": UNAVAILABLE}
    assert [a.get("error") for a in answers] == [
        None,
        unavailable,
        unavailable,
        {"code": "not_found", "message": "no challenge 'x/y'; see GET /v1/challenges"},
    ]
    assert answers[0]["status"] == "queued"
    assert len(calls) == 2
    # Item 2 was stored before its task was refused: only item 1's run is in the queue.
    assert after == Ledger(stored=before.stored + 2, queued=before.queued + 1)
