"""Property-based fuzzing of the API, in-process on real Redis (a database of its own).

Whatever schemathesis sends to each operation of the OpenAPI document (valid requests and
invalid ones), and whatever Python's JSON reader takes beyond that, the API never answers 5xx,
and every 4xx is our JSON error shape. Fixed seeds and small budgets keep it repeatable and
quick. The fuzzed submissions stay in database 1: no worker of a later test grades them.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from grader.api.app import create_app
from grader.domain.loader import load_challenges
from grader.settings import Settings
from grader.testing import SUBMITTER_KEY, RedisServer, service_settings

from .conftest import Ledger, client_for, ledger_of

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
SEED = 20261203
EXAMPLES_PER_OPERATION = 100

_real_getaddrinfo = socket.getaddrinfo


def _numeric_only(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    """Resolve address literals only: fuzzed callback hosts never reach a DNS server."""
    kwargs["flags"] = kwargs.get("flags", 0) | socket.AI_NUMERICHOST
    return _real_getaddrinfo(host, port, *args, **kwargs)


def _settings(redis_url: str) -> Settings:
    settings = service_settings(redis_url)
    # Hundreds of submissions a minute, each waiting at most a moment: the rate limit and
    # long waits are tested elsewhere.
    keys = [k.model_copy(update={"rate_per_minute": 10**9}) for k in settings.api.keys]
    api = settings.api.model_copy(update={"keys": keys, "max_wait_seconds": 0.2})
    return settings.model_copy(update={"api": api})


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "database": "none"},
    }
)
# Only reads the OpenAPI document (no Redis): the requests go to ``fuzzed_app`` below.
# /readyz answers 503 by design here (no worker runs): its contract is tested elsewhere.
_schema_app = create_app(_settings("redis://127.0.0.1:1/0"))
# The bundled challenges: what the fuzzed app's bank is seeded with (no Redis read here).
CHALLENGE_IDS = sorted(c.qualified_id for c in load_challenges([Settings().api.challenges_root]))
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app, config=CONFIG).exclude(
    path="/readyz"
)


def _item(body: Any) -> st.SearchStrategy[Any]:
    """A submission body, or one that gets past the first checks to storing and queueing:
    a real challenge id (else it is a 404) and one of code or choice (else a 422)."""
    if not isinstance(body, dict) or "challenge_id" not in body:
        return st.just(body)
    rest = {k: v for k, v in body.items() if k not in ("code", "choice")}
    code = body["code"] if isinstance(body.get("code"), str) else "x = 1\n"
    choice = body["choice"] if isinstance(body.get("choice"), str) else "B"
    return st.builds(
        lambda answer, challenge_id: {**answer, "challenge_id": challenge_id},
        st.sampled_from([body, {**rest, "code": code}, {**rest, "choice": choice}]),
        st.sampled_from([body["challenge_id"], *CHALLENGE_IDS]),
    )


@schema.hook("flatmap_body")
def _reach_real_challenges(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    if isinstance(body, dict) and isinstance(body.get("submissions"), list):
        items = st.tuples(*(_item(item) for item in body["submissions"]))
        return items.map(lambda chosen: {**body, "submissions": list(chosen)})
    return _item(body)


@pytest.fixture(scope="module")
def fuzzed_redis(redis_server: RedisServer) -> Iterator[str]:
    """Database 1 of the session's Redis: the store, the queues and the rate windows."""
    url = redis_server.url.rsplit("/", 1)[0] + "/1"
    yield url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def fuzzed_app(fuzzed_redis: str) -> Iterator[FastAPI]:
    """The app on its own database, with a resolver that never leaves the machine."""
    app = create_app(_settings(fuzzed_redis))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", _numeric_only)
        yield app
    app.state.grader.store.close()


def error_shape(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> bool:
    """Every 4xx is ``{"error": {"code": str, "message": str, ...}}`` served as JSON."""
    if not 400 <= response.status_code < 500:
        return True
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"4xx served as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return True


@schema.parametrize()
def test_no_operation_answers_5xx_or_a_non_json_error(
    case: schemathesis.Case[Any], fuzzed_app: FastAPI
) -> None:
    """Fuzzed requests to every operation get no 5xx, and every 4xx is our JSON error."""
    # Also: each status and body is one the OpenAPI document declares, and a wrong method is
    # a 405 with Allow. Left out: positive_data_acceptance (the document cannot say "exactly
    # one of code or choice") and negative_data_rejection (the body hook turns some invalid
    # bodies valid).
    case.call_and_validate(
        app=fuzzed_app,
        headers=AUTH,
        checks=[
            not_a_server_error,
            unsupported_method,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            error_shape,
        ],
    )


# What schemathesis does not send: the JSON Python's reader also takes (NaN, Infinity, 1e400,
# lone surrogates as \ud800 escapes, huge integers), put into otherwise valid submissions.
_text = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates included
_odd = st.sampled_from(
    [float("nan"), float("inf"), float("-inf"), 1e308, 10**400, "\ud800", "x\udfffy", "\x00", ""]
)
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | _text | _odd
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_urls = st.sampled_from(
    [
        "https://8.8.8.8/hook",
        "http://[64:ff9b::7f00:1]/",
        "http://2130706433/",
        "http://[::1/x",
        "http://example.org:99999/",
        "http://\ud800.example/",
    ]
)
_FIELDS = ("challenge_id", "code", "choice", "learner_id", "callback_url", "metadata", "key")


@st.composite
def _submission(draw: st.DrawFn) -> dict[str, Any]:
    """A valid submission with one to three fields spoiled (``key``: a metadata key)."""
    body: dict[str, Any] = {"challenge_id": draw(st.sampled_from(CHALLENGE_IDS))}
    if draw(st.booleans()):
        body["code"] = draw(st.just("x = 1\n") | _text)
    else:
        body["choice"] = draw(st.sampled_from("ABCD"))
    spoiled = _odd | _odd | _json  # mostly the values Python reads and cannot write back
    for field in draw(st.sets(st.sampled_from(_FIELDS), min_size=1, max_size=3)):
        if field == "key":
            body["metadata"] = {draw(_text | st.sampled_from(["\ud800", "x\udfffy"])): 1}
        elif field == "metadata":
            body["metadata"] = {draw(_text): draw(spoiled)}
        elif field == "callback_url":
            body["callback_url"] = draw(_urls | spoiled)
        else:
            body[field] = draw(spoiled)
    return body


_requests = st.tuples(st.just("/v1/submissions"), _submission()) | st.tuples(
    st.just("/v1/submissions/batch"),
    st.lists(_submission(), min_size=1, max_size=4).map(lambda items: {"submissions": items}),
)

Send = Callable[[str, bytes], tuple[httpx.Response, Ledger, Ledger]]


@pytest.fixture(scope="module")
def send(fuzzed_app: FastAPI, fuzzed_redis: str) -> Iterator[Send]:
    """POST raw bytes to the fuzzed app; the answer with the ledger before and after."""
    runner = asyncio.Runner()
    client = client_for(fuzzed_app)
    redis_client = redis.Redis.from_url(fuzzed_redis)

    def post(path: str, content: bytes) -> tuple[httpx.Response, Ledger, Ledger]:
        before = ledger_of(redis_client)
        headers = {**AUTH, "Content-Type": "application/json"}
        response = runner.run(client.post(path, headers=headers, content=content))
        return response, before, ledger_of(redis_client)

    yield post
    runner.run(client.aclose())
    runner.close()
    redis_client.close()


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(request=_requests)
def test_what_python_json_also_reads_is_never_a_5xx_and_a_4xx_stores_nothing(
    send: Send, request: tuple[str, dict[str, Any]]
) -> None:
    """NaN, lone surrogates and odd values anywhere: no 5xx; a 4xx is JSON and stores nothing."""
    path, body = request
    response, before, after = send(path, json.dumps(body).encode())
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert after == before
