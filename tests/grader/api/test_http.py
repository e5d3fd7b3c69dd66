"""Requests that are not HTTP at all, answered by the service's own uvicorn process in JSON."""

from __future__ import annotations

import json
import socket

import h11
import pytest

from grader.api.http import BAD_HTTP_CODE, bad_request_body
from grader.testing import ApiProcess


def test_the_body_is_our_error_shape() -> None:
    """The message says the request was not valid HTTP and keeps the parser's reason."""
    assert json.loads(bad_request_body("Invalid HTTP request received.")) == {
        "error": {
            "code": "bad_http_request",
            "message": "not a valid HTTP request: Invalid HTTP request received.",
        }
    }


def exchange(api_process: ApiProcess, raw: bytes) -> tuple[h11.Response, bytes]:
    """Send ``raw`` bytes, read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", api_process.port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(received)
    client.receive_data(b"")
    response = client.next_event()
    assert isinstance(response, h11.Response), received
    body = b""
    while isinstance(event := client.next_event(), h11.Data):
        body += event.data
    assert isinstance(event, h11.EndOfMessage | h11.ConnectionClosed), event
    return response, body


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", id="header-line"),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n", id="length"
        ),
        pytest.param(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", id="null-byte-target"),
        pytest.param(b"\xff\xfe\r\n\r\n", id="binary"),
    ],
)
def test_a_malformed_request_gets_a_json_400_and_the_connection_closes(
    api_process: ApiProcess, raw: bytes
) -> None:
    """uvicorn's own answer would be plain text; ours is the API's error body, 400, closed."""
    response, body = exchange(api_process, raw)
    headers = {name.decode(): value.decode() for name, value in response.headers}
    assert response.status_code == 400
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == BAD_HTTP_CODE
    assert error["message"].startswith("not a valid HTTP request: ")


def test_a_wellformed_request_still_reaches_the_application(api_process: ApiProcess) -> None:
    """The protocol only changes the malformed case: /healthz answers as before."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response, body = exchange(api_process, request)
    assert response.status_code == 200
    assert json.loads(body)["status"] == "ok"
