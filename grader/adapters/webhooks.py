"""Webhooks: refuse callbacks toward private addresses, sign bodies with HMAC-SHA256, deliver.

Signature: ``X-Grader-Signature: v1=<hex>`` where ``hex = HMAC_SHA256(secret,
f"{timestamp}.{body}")`` and ``X-Grader-Timestamp`` carries the Unix timestamp. Receivers
recompute it over the raw body and reject old timestamps (replay protection).

Delivery resolves the host once, checks every address with the rules of the submission-time
check, and connects to a checked address itself (the URL's host replaced by the address, the
original ``Host`` header, and for https the original name as TLS server name and for
certificate verification): nothing resolves the name a second time, so a DNS answer that
changes between the check and the connection (rebinding) cannot reach a private address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import UnsafeCallback

SIGNATURE_HEADER = "X-Grader-Signature"
TIMESTAMP_HEADER = "X-Grader-Timestamp"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def check_callback_url(url: str, allow_hosts: Sequence[str]) -> None:
    """Refuse URLs that are not http(s), or whose host is not plainly a public address.

    Both urllib and httpx must read the URL; the host and port checked are httpx's, the parser
    that delivers it. Every address the host resolves to must be public, and so must any IPv4
    address embedded in an IPv6 one (NAT64, IPv4-mapped, 6to4, ...). Numbers that only some
    parsers read as IPv4 (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are refused outright.
    Allow-listed hosts skip the address rules, not the URL rules.
    """
    target = _target(url, allow_hosts)
    if target.allowed:
        return
    try:
        _resolve(target)
    except (OSError, UnicodeError) as exc:
        raise UnsafeCallback(f"callback host {target.url.host!r} does not resolve: {exc}") from None


def deliver(
    url: str,
    body: bytes,
    secret: str,
    timeout: float,
    *,
    allow_hosts: Sequence[str],
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """POST the signed body once to a checked address of the URL's host; return the status.

    Raises ``UnsafeCallback`` when the URL or any address of its host is refused (before any
    connection), and httpx errors when the host does not resolve or no address answers.
    Redirects are not followed: a 3xx is returned like any other status. ``ssl_context``
    replaces httpx's default trust store (certifi) for https receivers.
    """
    target = _target(url, allow_hosts)
    try:
        addresses = _resolve(target)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(
            f"callback host {target.url.host!r} does not resolve: {exc}"
        ) from None
    timestamp = int(time.time())
    headers = {
        "Host": target.url.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": "grader-webhook/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    extensions: dict[str, Any] = {}
    if target.url.scheme == "https":
        extensions["sni_hostname"] = target.url.raw_host.decode("ascii")
    # trust_env=False: a proxy from the environment would resolve and connect on its own
    with httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        verify=ssl_context if ssl_context is not None else True,
    ) as client:

        def post(address: Address) -> int:
            pinned = target.url.copy_with(host=str(address))
            with client.stream(
                "POST", pinned, content=body, headers=headers, extensions=extensions
            ) as response:
                return response.status_code  # the body is never read

        for address in addresses[:-1]:  # every one was checked; the next if one refuses
            try:
                return post(address)
            except httpx.ConnectError:
                continue
        return post(addresses[-1])


@dataclass(frozen=True)
class _Target:
    """A callback URL both parsers read, its port, and whether its host is allow-listed."""

    url: httpx.URL
    port: int
    allowed: bool


def _target(url: str, allow_hosts: Sequence[str]) -> _Target:
    try:
        _ = urlsplit(url).port  # reading the port is what makes urllib check it
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsafeCallback(f"callback_url is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UnsafeCallback(f"callback_url must be an http(s) URL with a host, got {url!r}")
    if parsed.userinfo:
        raise UnsafeCallback("callback_url must not carry credentials")
    port = parsed.port if parsed.port is not None else 443 if parsed.scheme == "https" else 80
    if not 0 < port <= 65535:
        raise UnsafeCallback(f"callback_url port must be between 1 and 65535, got {port}")
    host = parsed.host
    allowed = host in allow_hosts
    if not allowed and _numeric(host) and not _dotted_quad(host):
        raise UnsafeCallback(
            f"callback host {host!r} is a number but not a dotted-decimal IPv4 address"
        )
    return _Target(parsed, port, allowed)


def _resolve(target: _Target) -> list[Address]:
    """The host's addresses from one resolution, in the resolver's order, each checked unless
    the host is allow-listed (raises OSError or UnicodeError when it does not resolve)."""
    infos = socket.getaddrinfo(
        target.url.raw_host.decode("ascii"), target.port, proto=socket.IPPROTO_TCP
    )
    addresses = list(dict.fromkeys(ipaddress.ip_address(sockaddr[0]) for *_, sockaddr in infos))
    if not addresses:
        raise OSError("no address")
    if not target.allowed:
        for address in addresses:
            why = _not_public(address)
            if why is not None:
                raise UnsafeCallback(
                    f"callback host {target.url.host!r} resolves to {why}; "
                    "ask the operator to allow-list it"
                )
    return addresses


_PRIVATE = "a private, loopback, link-local or reserved address"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use, never global
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291, deprecated
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a callback may not go to ``address``, or None when it may."""
    if not address.is_global or address.is_multicast:
        return f"{address}, {_PRIVATE}"
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return f"{address}, in the local-use NAT64 prefix {_NAT64_LOCAL}"
        embedded = _embedded_ipv4(address)
        if embedded is not None and (not embedded.is_global or embedded.is_multicast):
            return f"{address}, which embeds {embedded}, {_PRIVATE}"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is one of the embedding forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _numeric(host: str) -> bool:
    """Whether a resolver may read ``host`` as an IPv4 address (inet_aton's forms)."""
    return all(_NUMERIC_LABEL.fullmatch(label) for label in host.removesuffix(".").split("."))


def _dotted_quad(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True
