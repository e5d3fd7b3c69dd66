"""``grader.client.Client`` against a scripted API (httpx.MockTransport): requests, retries,
idempotency, waiting, errors. The real path is tests/integration/test_client.py."""

from __future__ import annotations

import httpx
import pytest

from grader.client import (
    ApiError,
    Client,
    Limits,
    PublicSubmission,
    RetryPolicy,
    RunMode,
    Unreachable,
)
from grader.domain.submission import SubmissionStatus
from grader.domain.verdict import VerdictStatus

from .support import CHALLENGE, ENV, ScriptedApi, error, ok, recorder, run_record, submission

KEY = "grd_test_key"


def client(api: ScriptedApi, sleep: list[float] | None = None, **retry: float) -> Client:
    slept = sleep if sleep is not None else []
    return Client(
        "http://grader.test/",
        KEY,
        transport=api.sync(),
        sleep=slept.append,
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
    )


def test_submit_sends_the_body_the_key_and_an_idempotency_key() -> None:
    """A code submission is one POST with a bearer key and a fresh Idempotency-Key; the
    answer is the typed submission."""
    api = ScriptedApi([ok(submission(), 202)])
    with client(api) as grader:
        answer = grader.submit(CHALLENGE, "print(2)", learner_id="l1", metadata={"try": 1})
    assert isinstance(answer, PublicSubmission)
    assert (answer.id, answer.status, answer.final) == ("s1", SubmissionStatus.QUEUED, False)
    (request,) = api.requests
    assert (request.method, request.url.path) == ("POST", "/v1/submissions")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Idempotency-Key"].startswith("grader-client-")
    assert api.bodies() == [
        {"challenge_id": CHALLENGE, "code": "print(2)", "learner_id": "l1", "metadata": {"try": 1}}
    ]
    assert api.params() == [{}]


def test_each_submit_has_its_own_idempotency_key_unless_given_one() -> None:
    """Two submits make two keys; a given key is sent as it is."""
    api = ScriptedApi([ok(submission(), 202), ok(submission(), 202), ok(submission(), 200)])
    with client(api) as grader:
        grader.submit(CHALLENGE, "x = 1")
        grader.submit(CHALLENGE, "x = 1")
        grader.submit(CHALLENGE, choice="B", idempotency_key="attempt-7")
    keys = [r.headers["Idempotency-Key"] for r in api.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "attempt-7"
    assert api.bodies()[2] == {"challenge_id": CHALLENGE, "choice": "B"}


def test_429_is_retried_after_its_retry_after_with_the_same_idempotency_key() -> None:
    """A rate-limited submit waits exactly Retry-After, then sends the same request again."""
    slept: list[float] = []
    api = ScriptedApi(
        [
            error(429, "rate_limited", "over the limit", **{"Retry-After": "7"}),
            ok(submission(), 202),
        ]
    )
    with client(api, slept) as grader:
        assert grader.submit(CHALLENGE, "x = 1").id == "s1"
    assert slept == [7.0]
    first, second = api.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.content == second.content


def test_503_without_retry_after_backs_off_with_jitter_then_raises() -> None:
    """503s are retried with capped exponential backoff (full jitter); after the last try the
    API's error is raised with its status and code."""
    slept: list[float] = []
    api = ScriptedApi([error(503, "unavailable", "redis is away")] * 4)
    grader = client(api, slept, attempts=4, backoff_max=1.0)
    with grader, pytest.raises(ApiError) as raised:
        grader.get("s1")
    assert (raised.value.status, raised.value.code) == (503, "unavailable")
    assert raised.value.message == "redis is away"
    assert len(api.requests) == 4 and len(slept) == 3
    assert all(0 <= s <= 1.0 for s in slept)


def test_a_retry_after_beyond_the_policy_is_raised_at_once() -> None:
    """A 429 that asks for longer than ``retry_after_max`` is not slept on."""
    slept: list[float] = []
    api = ScriptedApi([error(429, "rate_limited", "later", **{"Retry-After": "3600"})])
    with client(api, slept, retry_after_max=60) as grader, pytest.raises(ApiError) as raised:
        grader.submit(CHALLENGE, "x = 1")
    assert (raised.value.status, raised.value.retry_after, slept) == (429, 3600.0, [])


def test_client_errors_are_raised_at_once_with_the_apis_detail() -> None:
    """A 404 or a 422 is never retried; ApiError carries code, message and problems."""
    body = {
        "error": {
            "code": "invalid",
            "message": "challenge_id: too short",
            "problems": [{"field": "challenge_id", "message": "too short"}],
        }
    }
    api = ScriptedApi([httpx.Response(422, json=body), error(404, "not_found", "no such")])
    with client(api) as grader:
        with pytest.raises(ApiError) as invalid:
            grader.submit("x", "x = 1")
        with pytest.raises(ApiError) as missing:
            grader.get("nope")
    assert (invalid.value.status, invalid.value.code) == (422, "invalid")
    assert invalid.value.problems == [{"field": "challenge_id", "message": "too short"}]
    assert (missing.value.status, missing.value.code, missing.value.message) == (
        404,
        "not_found",
        "no such",
    )
    assert len(api.requests) == 2


def test_a_proxys_non_json_error_is_still_an_api_error() -> None:
    """A 502 page from a proxy is retried, then raised as ``http_error`` with its text."""
    page = httpx.Response(502, text="<html>Bad Gateway</html>")
    api = ScriptedApi([page, page])
    with client(api, attempts=2) as grader, pytest.raises(ApiError) as raised:
        grader.get("s1")
    assert (raised.value.status, raised.value.code) == (502, "http_error")
    assert raised.value.message == "<html>Bad Gateway</html>"


def test_lost_connections_are_retried_then_unreachable() -> None:
    """Refused connections and timeouts are retried; after the last try: ``Unreachable``."""
    request = httpx.Request("GET", "http://grader.test/v1/submissions/s1")
    api = ScriptedApi(
        [
            httpx.ConnectError("refused", request=request),
            httpx.ReadTimeout("slow", request=request),
            httpx.ConnectError("refused", request=request),
        ]
    )
    grader = client(api, attempts=3)
    with grader, pytest.raises(Unreachable, match=r"no answer from http://grader.test: Conn"):
        grader.get("s1")
    assert len(api.requests) == 3


def test_a_connection_lost_then_back_gets_the_answer() -> None:
    """One refused connection, then the answer: the caller sees only the answer."""
    request = httpx.Request("POST", "http://grader.test/v1/submissions")
    api = ScriptedApi([httpx.ConnectError("refused", request=request), ok(submission(), 202)])
    with client(api) as grader:
        assert grader.submit(CHALLENGE, "x = 1").status is SubmissionStatus.QUEUED
    first, second = api.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_a_batch_is_not_resent_after_a_lost_connection() -> None:
    """A batch has no idempotency key: a lost connection is raised, never sent twice."""
    request = httpx.Request("POST", "http://grader.test/v1/submissions/batch")
    api = ScriptedApi([httpx.ReadTimeout("slow", request=request)])
    with client(api) as grader, pytest.raises(Unreachable):
        grader.submit_batch([{"challenge_id": CHALLENGE, "choice": "B"}])
    assert len(api.requests) == 1


def test_a_batch_is_retried_after_a_429_but_not_after_a_proxys_502() -> None:
    """A 429 stored nothing: the batch is sent again; a 502 may have: it is raised."""
    body = {"submissions": [{"index": 0, **submission()}]}
    api = ScriptedApi(
        [
            error(429, "rate_limited", "later", **{"Retry-After": "1"}),
            ok(body, 202),
            httpx.Response(502, text="Bad Gateway"),
        ]
    )
    with client(api) as grader:
        answer = grader.submit_batch([{"challenge_id": CHALLENGE, "code": "x = 1"}])
        with pytest.raises(ApiError) as raised:
            grader.submit_batch([{"challenge_id": CHALLENGE, "code": "x = 1"}])
    assert answer.submissions[0].index == 0
    assert raised.value.status == 502
    assert len(api.requests) == 3


def test_submit_with_wait_long_polls_until_the_verdict() -> None:
    """``wait=True``: POST ?wait=30, then GET ?wait=30 until final; the verdict is typed."""
    done = submission(SubmissionStatus.DONE, VerdictStatus.PASSED)
    api = ScriptedApi(
        [
            ok(submission(), 202),
            ok(submission(SubmissionStatus.RUNNING)),
            ok(done),
        ]
    )
    with client(api) as grader:
        answer = grader.submit(CHALLENGE, "print(2)", wait=True)
    assert answer.final and answer.result is not None
    assert answer.result.status is VerdictStatus.PASSED
    assert answer.result.observation is not None
    assert answer.result.observation.stdout.text == "2\n"
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("POST", "/v1/submissions"),
        ("GET", "/v1/submissions/s1"),
        ("GET", "/v1/submissions/s1"),
    ]
    assert api.params() == [{"wait": "30.0"}] * 3


def test_a_verdict_in_the_first_answer_ends_the_wait() -> None:
    """A choice is graded at once: one POST, no long-poll."""
    api = ScriptedApi([ok(submission(SubmissionStatus.DONE, VerdictStatus.FAILED))])
    with client(api) as grader:
        answer = grader.submit(CHALLENGE, choice="A", wait=True)
    assert answer.result is not None and answer.result.status is VerdictStatus.FAILED
    assert len(api.requests) == 1


def test_result_asks_for_a_format_and_returns_its_document() -> None:
    """``result(format=...)`` sends ?format= and returns the platform's document as is."""
    document = {"version": 3, "status": "pass", "tests": []}
    api = ScriptedApi([ok(document)])
    with client(api) as grader:
        assert grader.result("s1", format="exercism-v3") == document
    assert api.params() == [{"format": "exercism-v3"}]
    with pytest.raises(ValueError, match="'csv' is not a valid ResultFormat"):
        grader.result("s1", format="csv")


def test_result_in_a_format_before_the_end_is_a_409_api_error() -> None:
    """The API's 409 not_finished reaches the caller as it is, not retried."""
    api = ScriptedApi([error(409, "not_finished", "submission s1 is queued")])
    with client(api) as grader, pytest.raises(ApiError) as raised:
        grader.result("s1", format="gradescope")
    assert (raised.value.status, raised.value.code) == (409, "not_finished")


def test_run_sends_files_entry_mode_stdin_and_limits_and_waits_for_the_observation() -> None:
    """A raw run: POST /v1/runs with the documented body, then GET /v1/runs/{id} until done."""
    api = ScriptedApi([ok(run_record("queued"), 202), ok(run_record("done"))])
    with client(api) as grader:
        record = grader.run(
            ENV,
            {"test_one.py": "def test_x(): pass\n", "helper.py": "X = 1\n"},
            entry="test_one.py",
            mode=RunMode.PYTEST,
            stdin="3\n",
            limits=Limits(wall_seconds=2),
        )
    assert record.final and record.observation is not None
    assert record.observation.exit_code == 0
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("POST", "/v1/runs"),
        ("GET", "/v1/runs/r1"),
    ]
    assert api.bodies()[0] == {
        "environment": ENV,
        "files": {"test_one.py": "def test_x(): pass\n", "helper.py": "X = 1\n"},
        "entry": "test_one.py",
        "mode": "pytest",
        "stdin": "3\n",
        "limits": {"wall_seconds": 2.0},
    }
    assert api.requests[0].headers["Idempotency-Key"].startswith("grader-client-")
    assert api.params() == [{"wait": "30.0"}, {"wait": "30.0"}]


def test_run_of_one_source_names_it_the_entry_and_can_skip_waiting() -> None:
    """``files`` as a string is the entry's source; ``wait=False`` returns the queued run."""
    api = ScriptedApi([ok(run_record("queued"), 202)])
    with client(api) as grader:
        record = grader.run(ENV, "print(2)", wait=False)
    assert (record.id, record.status, record.final) == ("r1", "queued", False)
    assert api.bodies()[0]["files"] == {"main.py": "print(2)"}
    assert api.bodies()[0]["mode"] == "script"
    assert api.params() == [{}]


def test_wait_gives_up_after_its_timeout_with_the_submission_as_it_stands() -> None:
    """``wait(timeout=0)`` long-polls once for nothing and returns the running submission."""
    api = ScriptedApi([ok(submission(SubmissionStatus.RUNNING))])
    with client(api) as grader:
        answer = grader.wait("s1", timeout=0)
    assert (answer.status, answer.final) == (SubmissionStatus.RUNNING, False)
    assert api.params() == [{}]


def test_the_catalog_is_typed() -> None:
    """Challenges and environments parse into the API's models."""
    challenge = {
        "id": CHALLENGE,
        "set": "async-test-mastery",
        "title": "Counter",
        "kind": "state",
        "difficulty": "intermediate",
        "prompt": "What is the counter?",
        "mode": "pytest",
        "environment": ENV,
        "answerable_by": ["code", "choice"],
        "options": [{"label": "A", "text": "1"}],
    }
    environment = {
        "name": ENV,
        "python": "3.11",
        "description": "",
        "packages": {"httpx": "0.27.2"},
        "locked": {"httpx": "0.27.2"},
        "image_id": None,
        "available": False,
    }
    api = ScriptedApi(
        [ok({"challenges": [challenge], "count": 1}), ok({"environments": [environment]})]
    )
    with client(api) as grader:
        (listed,) = grader.challenges(set="async-test-mastery")
        (env,) = grader.environments()
    assert (listed.id, listed.kind.value, listed.options[0].label) == (CHALLENGE, "state", "A")
    assert (env.name, env.available) == (ENV, False)
    assert api.params()[0] == {"set": "async-test-mastery"}


def test_a_retry_after_as_an_http_date_is_understood() -> None:
    """Retry-After may be an HTTP date: the wait is the time until then (never negative)."""
    api = ScriptedApi(
        [
            error(503, "unavailable", "x", **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            ok(submission()),
        ]
    )
    slept, sleep = recorder()
    with Client("http://grader.test", KEY, transport=api.sync(), sleep=sleep) as grader:
        grader.get("s1")
    assert slept == [0.0]
