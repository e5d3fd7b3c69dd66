"""Webhooks: refuse callbacks toward private addresses, sign bodies with HMAC-SHA256, deliver.

Signature: ``X-Grader-Signature: v1=<hex>`` where ``hex = HMAC_SHA256(secret,
f"{timestamp}.{body}")`` and ``X-Grader-Timestamp`` carries the Unix timestamp. Receivers
recompute it over the raw body and reject old timestamps (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from ..errors import UnsafeCallback

SIGNATURE_HEADER = "X-Grader-Signature"
TIMESTAMP_HEADER = "X-Grader-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: str, timestamp: int, body: bytes, signature: str, max_age_seconds: int = 300
) -> bool:
    """What a receiver does; used by our tests and shown in the API guide."""
    if abs(time.time() - timestamp) > max_age_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def check_callback_url(url: str, allow_hosts: list[str]) -> None:
    """Refuse URLs that are not http(s) or that resolve to non-public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallback(f"callback_url must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise UnsafeCallback("callback_url must not carry credentials")
    host = parts.hostname
    if host in allow_hosts:
        return
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeCallback(f"callback host {host!r} does not resolve: {exc}") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global or address.is_multicast:
            raise UnsafeCallback(
                f"callback host {host!r} resolves to {address}, a private, loopback, "
                "link-local or reserved address; ask the operator to allow-list it"
            )


def deliver(url: str, body: bytes, secret: str, timeout: float) -> int:
    """POST the signed body once; return the HTTP status (raises httpx errors)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "grader-webhook/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        response = client.post(url, content=body, headers=headers)
    return response.status_code
