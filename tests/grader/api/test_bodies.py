"""Bodies Python's JSON reader takes but we cannot keep: a 422 JSON error, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from grader.testing import SUBMITTER_KEY

from .conftest import Ledger

HEADERS = {"Authorization": f"Bearer {SUBMITTER_KEY}", "Content-Type": "application/json"}
Q4 = "async-test-mastery/q4-counter-after-test"
FINITE = "Value error, must be a finite number (NaN, Infinity and 1e400 are not)"
UNICODE = "Value error, must be valid Unicode text (no lone surrogates)"


def _body(**fields: str) -> str:
    """A submission to Q4 with some fields written as raw JSON text (``NaN``, ``"\\ud800"``)."""
    raw = {"challenge_id": json.dumps(Q4), "code": json.dumps("x = 1\n"), **fields}
    return "{" + ", ".join(f'"{name}": {value}' for name, value in raw.items()) + "}"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (_body(metadata='{"score": 1e400}'), "metadata.score", FINITE),
        (_body(metadata='{"score": NaN}'), "metadata.score", FINITE),
        (_body(metadata='{"score": -Infinity}'), "metadata.score", FINITE),
        (_body(metadata='{"ok": 1, "score": Infinity}'), "metadata.score", FINITE),
        (_body(code='"print(\\"\\ud800\\")"'), "code", UNICODE),
        (_body(learner_id='"u-\\udfff"'), "learner_id", UNICODE),
        (_body(metadata='{"\\ud800": 1}'), "metadata.\ufffd\ufffd\ufffd.[key]", UNICODE),
        (_body(metadata='{"course": "\\ud800x"}'), "metadata.course", UNICODE),
        (_body(callback_url='"https://h\\ud800.example/hook"'), "callback_url", UNICODE),
    ],
)
async def test_values_json_cannot_carry_back_are_422_and_nothing_is_stored(
    api: httpx.AsyncClient,
    ledger: Callable[[], Ledger],
    body: str,
    field: str,
    message: str,
) -> None:
    """Infinite and NaN numbers and lone surrogates are refused with the field that held them."""
    before = ledger()
    response = await api.post("/v1/submissions", headers=HEADERS, content=body.encode())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": f"{field}: {message}",
            "problems": [{"field": field, "message": message}],
        }
    }
    assert ledger() == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.org:99999/hook", "Port out of range 0-65535"),
        ("http://example.org:-1/hook", "Port could not be cast to integer value as '-1'"),
        ("http://example.org:abc/hook", "Port could not be cast to integer value as 'abc'"),
        ("http://[::1/x", "Invalid IPv6 URL"),
        ("http://[zz::1]/", "'zz::1' does not appear to be an IPv4 or IPv6 address"),
    ],
)
async def test_callback_urls_with_broken_ports_or_addresses_are_422(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], url: str, message: str
) -> None:
    """A callback URL no parser can read is an invalid request, not a server error."""
    before = ledger()
    response = await api.post(
        "/v1/submissions",
        headers=HEADERS,
        json={"challenge_id": Q4, "code": "x = 1\n", "callback_url": url},
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": {"code": "invalid", "message": f"callback_url is not a valid URL: {message}"}
    }
    assert ledger() == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://2130706433/",
        "http://0177.0.0.1/",
    ],
)
async def test_callbacks_to_disguised_private_addresses_are_422(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], url: str
) -> None:
    """NAT64 and numeric spellings of loopback and link-local addresses are refused."""
    before = ledger()
    response = await api.post(
        "/v1/submissions",
        headers=HEADERS,
        json={"challenge_id": Q4, "code": "x = 1\n", "callback_url": url},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["message"].startswith(("callback host", "callback_url is"))
    assert ledger() == before


@pytest.mark.asyncio
async def test_a_body_that_is_not_utf8_is_400_json(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """Bytes that are not UTF-8 cannot be JSON: a 400 in our error shape."""
    before = ledger()
    response = await api.post(
        "/v1/submissions", headers=HEADERS, content=b'{"challenge_id": "\xff\xfe"}'
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "message": "There was an error parsing the body"}
    }
    assert ledger() == before


@pytest.mark.asyncio
async def test_a_content_length_that_is_not_a_number_is_400(api: httpx.AsyncClient) -> None:
    """A Content-Length of non-ASCII digits ('²') is refused, not a crash in int()."""
    headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    headers.append((b"Content-Length", "\u00b2".encode("latin-1")))
    response = await api.post("/v1/submissions", headers=headers, content=b"{}")
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "message": "Content-Length must be a number of bytes"}
    }
