"""The HTTP protocol the service runs: uvicorn's h11 one, with malformed requests answered in JSON.

A request that is not HTTP at all (a broken request line, an invalid header, a body longer than
its ``Content-Length`` says) never reaches the application: uvicorn answers it ``400`` in plain
text. The API promises that every error is ``{"error": {"code", "message"}}``, so this protocol
answers those in the same shape, and still closes the connection (nothing after a malformed
request can be trusted to be framed right). The service runs it with
``uvicorn --http grader.api.http:JsonErrorsH11Protocol``.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BAD_HTTP_CODE", "JsonErrorsH11Protocol", "bad_request_body"]

BAD_HTTP_CODE = "bad_http_request"


def bad_request_body(message: str) -> bytes:
    """The JSON body of a ``400`` for a request that could not be parsed as HTTP."""
    detail = {"code": BAD_HTTP_CODE, "message": f"not a valid HTTP request: {message}"}
    return json.dumps({"error": detail}).encode()


class JsonErrorsH11Protocol(H11Protocol):
    """``H11Protocol`` whose answer to an unparsable request is our JSON error body."""

    def send_400_response(self, msg: str) -> None:
        body = bad_request_body(msg)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()
