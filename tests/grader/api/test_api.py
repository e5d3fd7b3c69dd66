"""The API contract without a worker: auth, roles, limits, errors. Real Redis underneath."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from grader.adapters.redis_keys import DONE_CHANNEL
from grader.adapters.store import SubmissionStore
from grader.api.app import create_app
from grader.api.security import hash_key
from grader.domain.submission import SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import ConfigError
from grader.settings import ApiKey, ApiSettings, Settings
from grader.testing import (
    ADMIN_KEY,
    INSTRUCTOR_KEY,
    OTHER_KEY,
    SUBMITTER_KEY,
    RedisServer,
    service_settings,
)

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
INSTRUCTOR = {"Authorization": f"Bearer {INSTRUCTOR_KEY}"}
Q4 = "async-test-mastery/q4-counter-after-test"
Q5 = "async-test-mastery/q5-test-isolation"


@pytest.mark.asyncio
async def test_missing_key_is_401_with_a_message(api: httpx.AsyncClient) -> None:
    """No key: 401, a JSON body that says how to authenticate."""
    response = await api.get("/v1/challenges")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing API key: send 'Authorization: Bearer <key>'",
        }
    }
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.asyncio
async def test_unknown_key_is_401(api: httpx.AsyncClient) -> None:
    """A key that is not configured is refused."""
    response = await api.get("/v1/challenges", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, response.json()["error"]["message"]) == (401, "unknown API key")


@pytest.mark.asyncio
async def test_x_api_key_header_works_too(api: httpx.AsyncClient) -> None:
    """X-API-Key is accepted as an alternative to the bearer header."""
    response = await api.get("/v1/challenges", headers={"X-API-Key": SUBMITTER_KEY})
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_submitters_do_not_see_answer_keys(api: httpx.AsyncClient) -> None:
    """Challenges hide answer, explanation and expectation from submitters."""
    response = await api.get(f"/v1/challenges/{Q4}", headers=SUBMITTER)
    body = response.json()
    assert response.status_code == 200
    assert body["id"] == Q4
    assert "answer" not in body and "expectation" not in body and "explanation" not in body
    assert [o["label"] for o in body["options"]] == ["A", "B", "C", "D"]
    assert body["answerable_by"] == ["code", "choice"]


@pytest.mark.asyncio
async def test_reference_solutions_of_tests_challenges_stay_hidden(api: httpx.AsyncClient) -> None:
    """A tests challenge's code is its reference solution: submitters never see it."""
    body = (await api.get("/v1/challenges", headers=SUBMITTER)).json()
    tests_kind = [c for c in body["challenges"] if c["kind"] == "tests"]
    assert tests_kind
    assert all("code" not in c for c in tests_kind)
    teacher = (await api.get("/v1/challenges", headers=INSTRUCTOR)).json()
    assert all(c["code"] for c in teacher["challenges"] if c["kind"] == "tests")


@pytest.mark.asyncio
async def test_instructors_see_answer_keys(api: httpx.AsyncClient) -> None:
    """The instructor role sees the key and the expectation."""
    body = (await api.get(f"/v1/challenges/{Q4}", headers=INSTRUCTOR)).json()
    assert body["answer"] == "C"
    assert body["expectation"]["state"]["values"] == {"counter": 3}


@pytest.mark.asyncio
async def test_list_challenges_filters_by_set(api: httpx.AsyncClient) -> None:
    """?set= narrows the list to one set."""
    body = (
        await api.get("/v1/challenges", params={"set": "async-test-mastery"}, headers=SUBMITTER)
    ).json()
    assert body["count"] == 5
    assert {c["set"] for c in body["challenges"]} == {"async-test-mastery"}


@pytest.mark.asyncio
async def test_unknown_challenge_is_404(api: httpx.AsyncClient) -> None:
    """Submitting to a challenge that does not exist is 404 with its name."""
    response = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": "x/y", "choice": "A"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no challenge 'x/y'; see GET /v1/challenges"


@pytest.mark.asyncio
async def test_code_and_choice_together_is_422(api: httpx.AsyncClient) -> None:
    """Exactly one of code and choice: both is a validation error with a message."""
    response = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q4, "code": "x", "choice": "A"}
    )
    assert response.status_code == 422
    assert "send exactly one of 'code', 'files' or 'choice'" in response.json()["error"]["message"]


@pytest.mark.asyncio
async def test_unknown_field_is_422(api: httpx.AsyncClient) -> None:
    """Unknown body fields are refused, naming the field."""
    response = await api.post(
        "/v1/submissions",
        headers=SUBMITTER,
        json={"challenge_id": Q4, "choice": "A", "answer": "C"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "answer: Extra inputs are not permitted"


@pytest.mark.asyncio
async def test_choice_outside_the_options_is_rejected(api: httpx.AsyncClient) -> None:
    """A choice that is no option is stored as rejected, with the reason."""
    response = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q5, "choice": "Z"}
    )
    assert response.status_code == 202
    assert response.json()["result"]["status"] == "rejected"
    assert response.json()["result"]["reason"] == "choice 'Z' is not one of A, B, C, D"


@pytest.mark.asyncio
async def test_code_for_a_conceptual_challenge_is_400(api: httpx.AsyncClient) -> None:
    """A conceptual challenge is answered by choice only."""
    response = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q5, "code": "print(1)"}
    )
    assert response.status_code == 400
    assert "is answered by choice, not by code" in response.json()["error"]["message"]


@pytest.mark.asyncio
async def test_oversized_code_is_413(api: httpx.AsyncClient) -> None:
    """Code over the limit is refused with 413 before anything is queued."""
    response = await api.post(
        "/v1/submissions",
        headers=SUBMITTER,
        json={"challenge_id": Q4, "code": "x" * (64 * 1024 + 1)},
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "code is larger than 65536 bytes"


@pytest.mark.asyncio
async def test_oversized_body_is_413(api: httpx.AsyncClient) -> None:
    """A body over the limit is refused from its Content-Length."""
    response = await api.post(
        "/v1/submissions", headers=SUBMITTER, content=b"{" + b" " * (600 * 1024) + b"}"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.asyncio
async def test_an_oversized_chunked_body_is_413(api: httpx.AsyncClient) -> None:
    """Without a Content-Length the body is read up to the limit, then refused."""
    response = await api.post(
        "/v1/submissions",
        headers=SUBMITTER,
        content=_chunks(b'{"challenge_id": "x", "code": "', b" " * (600 * 1024), b'"}'),
    )
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too_large",
        "message": "request body larger than 524288 bytes",
    }


@pytest.mark.asyncio
async def test_a_chunked_body_under_the_limit_reaches_the_handler(api: httpx.AsyncClient) -> None:
    """A chunked body within the limit is handed on whole: the submission is accepted."""
    response = await api.post(
        "/v1/submissions",
        headers={**SUBMITTER, "Content-Type": "application/json"},
        content=_chunks(b'{"challenge_id": "' + Q5.encode(), b'", "choice": "B"}'),
    )
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["result"]["status"]) == ("done", "passed")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://localhost/hook",
        "ftp://example.org/x",
    ],
)
async def test_private_callback_urls_are_refused(api: httpx.AsyncClient, url: str) -> None:
    """Callbacks toward loopback, private or link-local addresses are refused at submission."""
    response = await api.post(
        "/v1/submissions",
        headers=SUBMITTER,
        json={"challenge_id": Q5, "choice": "B", "callback_url": url},
    )
    assert response.status_code == 422
    assert "callback" in response.json()["error"]["message"]


@pytest.mark.asyncio
async def test_other_keys_cannot_read_my_submission(api: httpx.AsyncClient) -> None:
    """A submission is visible to its own key and to admins, 404 to everyone else."""
    created = (
        await api.post(
            "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q5, "choice": "B"}
        )
    ).json()
    path = f"/v1/submissions/{created['id']}"
    other = await api.get(path, headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert other.status_code == 404
    admin = await api.get(path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200


@pytest.mark.asyncio
async def test_rate_limit_is_429_with_retry_after(api: httpx.AsyncClient) -> None:
    """Past its per-minute limit a key gets 429 and a Retry-After header."""
    headers = {"Authorization": f"Bearer {OTHER_KEY}"}
    statuses = []
    for _ in range(4):
        response = await api.post(
            "/v1/submissions", headers=headers, json={"challenge_id": Q5, "choice": "B"}
        )
        statuses.append(response.status_code)
    assert statuses[:3] == [202, 202, 202]
    assert statuses[3] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert response.json()["error"]["code"] == "rate_limited"


@pytest.mark.asyncio
async def test_batch_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    """More than 50 items in a batch is refused."""
    items = [{"challenge_id": Q5, "choice": "B"}] * 51
    response = await api.post(
        "/v1/submissions/batch", headers=SUBMITTER, json={"submissions": items}
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "a batch holds at most 50 submissions"


@pytest.mark.asyncio
async def test_healthz_and_openapi(api: httpx.AsyncClient) -> None:
    """/healthz answers without a key and the OpenAPI document lists the v1 routes."""
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert {
        "/v1/submissions",
        "/v1/submissions/{submission_id}",
        "/v1/submissions/batch",
        "/v1/challenges",
        "/v1/environments",
    } <= set(paths)


def test_refuses_to_start_without_keys(redis_server: RedisServer) -> None:
    """No API keys configured: the app refuses to start and says how to make one."""
    settings = service_settings(redis_server.url).model_copy(update={"api": ApiSettings()})
    with pytest.raises(ConfigError, match="no API keys configured"):
        create_app(settings)


@pytest.mark.parametrize(
    ("raw", "secret", "message"),
    [
        ("changeme", None, "is a well-known default"),
        ("grd_fine_key_value_0123456789", "secret", "too weak"),
        ("grd_fine_key_value_0123456789", "short-but-not-default", "too weak"),
    ],
)
def test_refuses_to_start_with_default_secrets(
    redis_server: RedisServer, raw: str, secret: str | None, message: str
) -> None:
    """Default keys and weak webhook secrets stop the service at start-up."""
    key = ApiKey(id="k", sha256=hash_key(raw), webhook_secret=secret)
    settings = service_settings(redis_server.url)
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"keys": [key]})})
    with pytest.raises(ConfigError, match=message):
        create_app(settings)


def test_settings_read_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """GRADER_ variables with __ nesting reach the settings (keys as a JSON list)."""
    monkeypatch.setenv("GRADER_REDIS__URL", "redis://example:1/2")
    monkeypatch.setenv("GRADER_API__KEYS", '[{"id": "a", "sha256": "' + "0" * 64 + '"}]')
    monkeypatch.setenv("GRADER_SANDBOX__DEFAULTS__WALL_SECONDS", "7")
    settings = Settings()
    assert settings.redis.url == "redis://example:1/2"
    assert settings.api.keys[0].id == "a"
    assert settings.sandbox.defaults.wall_seconds == 7


@pytest.mark.asyncio
async def test_post_with_wait_answers_202_when_no_verdict_comes(api: httpx.AsyncClient) -> None:
    """Without a worker, POST ?wait= gives up after the wait and answers as a plain POST."""
    response = await api.post(
        "/v1/submissions",
        params={"wait": 0.3},
        headers=SUBMITTER,
        json={"challenge_id": Q4, "code": "x = 1\n"},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.headers["location"] == f"/v1/submissions/{response.json()['id']}"


@pytest.mark.asyncio
async def test_post_with_wait_answers_200_with_a_final_verdict(api: httpx.AsyncClient) -> None:
    """A choice is final at once: with ?wait= the POST says so with 200 and the verdict."""
    response = await api.post(
        "/v1/submissions",
        params={"wait": 5},
        headers=SUBMITTER,
        json={"challenge_id": Q5, "choice": "B"},
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["result"]["status"]) == ("done", "passed")


@pytest.mark.asyncio
async def test_post_with_wait_listens_before_the_submission_is_queued(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST ?wait= is subscribed by the time the run is queued, so no verdict goes unseen.

    The queue here acts as the fastest possible worker: the moment the run is queued it
    publishes a final record that is never stored. The answer can only be that record.
    """
    app = create_app(service_settings(redis_server.url))
    state = app.state.grader
    live_when_queued: list[bool] = []

    def finish_at_once(submission_id: str, environment: str) -> None:
        channel = f"{DONE_CHANNEL}{submission_id}"
        live_when_queued.append(state.completions.live)
        stored = state.store.get(submission_id)
        assert stored is not None
        announced = stored.model_copy(
            update={
                "status": SubmissionStatus.DONE,
                "verdict": Verdict(status=VerdictStatus.PASSED, reason="published at once"),
            }
        )
        state.store.client.publish(channel, announced.model_dump_json())

    monkeypatch.setattr(state.queue, "enqueue_run", finish_at_once)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://grader") as client:
        response = await client.post(
            "/v1/submissions",
            params={"wait": 3},
            headers=SUBMITTER,
            json={"challenge_id": Q4, "code": "x = 1\n"},
        )
    await state.completions.close()
    state.store.client.close()
    assert live_when_queued == [True]
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["result"]["reason"]) == ("done", "published at once")


@pytest.mark.asyncio
async def test_post_replay_with_wait_answers_with_the_earlier_submission(
    api: httpx.AsyncClient,
) -> None:
    """A replayed Idempotency-Key with ?wait= waits on the first submission, then answers 200."""
    headers = {**SUBMITTER, "Idempotency-Key": "replay-with-wait"}
    body = {"challenge_id": Q4, "code": "x = 1\n"}
    first = await api.post("/v1/submissions", headers=headers, json=body)
    again = await api.post("/v1/submissions", params={"wait": 0.3}, headers=headers, json=body)
    assert first.status_code == 202
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (
        200,
        first.json()["id"],
        "queued",
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("wait", [-1, 31])
async def test_post_wait_out_of_range_is_422(api: httpx.AsyncClient, wait: float) -> None:
    """The wait is between 0 and 30 seconds, as for the GET long-poll."""
    response = await api.post(
        "/v1/submissions",
        params={"wait": wait},
        headers=SUBMITTER,
        json={"challenge_id": Q5, "choice": "B"},
    )
    assert response.status_code == 422
    assert "wait" in response.text


@pytest.mark.asyncio
async def test_long_poll_answers_with_the_published_record(
    api: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    """A GET ?wait= answers with the record in the completion message, not a read-back.

    The message carries a final record that was never stored: the answer can only come
    from the message itself.
    """
    created = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q4, "code": "x = 1\n"}
    )
    submission_id = created.json()["id"]
    store = SubmissionStore.from_url(redis_server.url, retention_seconds=60)
    stored = store.get(submission_id)
    assert stored is not None
    announced = stored.model_copy(
        update={
            "status": SubmissionStatus.DONE,
            "verdict": Verdict(status=VerdictStatus.PASSED, reason="from the message"),
        }
    )

    async def announce_soon() -> None:  # what a worker's finish publishes, without storing
        await asyncio.sleep(0.3)
        store.client.publish(f"{DONE_CHANNEL}{submission_id}", announced.model_dump_json())

    announcer = asyncio.create_task(announce_soon())
    response = await api.get(
        f"/v1/submissions/{submission_id}", params={"wait": 10}, headers=SUBMITTER
    )
    await announcer
    still_stored = store.get(submission_id)
    store.client.close()
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["result"]["status"], body["result"]["reason"]) == (
        "done",
        "passed",
        "from the message",
    )
    assert still_stored is not None and still_stored.status is SubmissionStatus.QUEUED


def test_settings_refuse_one_key_under_two_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same key hash under two ids (two roles) is refused when settings are read."""
    digest = hash_key("grd_the_same_key_twice_0123456789")
    keys = [
        {"id": "lms", "sha256": digest, "role": "submitter"},
        {"id": "ops", "sha256": digest, "role": "admin"},
    ]
    monkeypatch.setenv("GRADER_API__KEYS", json.dumps(keys))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert refused.value.errors()[0]["msg"] == (
        "Value error, API keys 'lms' and 'ops' have the same sha256: one key cannot have two "
        "ids or roles; make a new key for one of them"
    )


def test_settings_refuse_one_id_twice() -> None:
    """Two keys under one id are refused: which secret signs its webhooks would be a guess."""
    keys = [
        ApiKey(id="lms", sha256=hash_key("grd_first_key_0123456789")),
        ApiKey(id="lms", sha256=hash_key("grd_second_key_0123456789")),
    ]
    with pytest.raises(
        ValidationError, match="API key id 'lms' is listed twice; ids must be unique"
    ):
        ApiSettings(keys=keys)


def test_the_service_refuses_duplicate_keys_that_skipped_validation(
    redis_server: RedisServer,
) -> None:
    """Settings changed with model_copy skip validators: create_app still refuses duplicates."""
    settings = service_settings(redis_server.url)
    twice = [*settings.api.keys, settings.api.keys[0].model_copy(update={"id": "again"})]
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"keys": twice})})
    with pytest.raises(ConfigError, match="API keys 'platform' and 'again' have the same sha256"):
        create_app(settings)
