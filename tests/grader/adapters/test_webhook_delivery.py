"""Webhook delivery: one resolution, every address checked, the connection to a checked one.

The resolver is a fake (``socket.getaddrinfo`` monkeypatched; address literals still go to the
real one, which is how a connection to a pinned address resolves); the receivers are real
HTTP(S) servers on loopback, reached through allow-listed names.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from grader.adapters.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_callback_url,
    deliver,
    verify,
)
from grader.errors import UnsafeCallback

SECRET = "s" * 40
BODY = b'{"id":"sub-1","status":"done"}'
PUBLIC = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
PRIVATE = "a private, loopback, link-local or reserved address"
_real_getaddrinfo = socket.getaddrinfo


@dataclass
class Resolver:
    """Answers names from a script, one answer per lookup (the last one repeats)."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def getaddrinfo(
        self, host: str, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:  # a literal: what connecting to a pinned address looks up
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        self.names.append(host)
        script = self.answers.get(host)
        if not script:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = script.pop(0) if len(script) > 1 else script[0]
        return [_info(address, port) for address in answer]


def _info(address: str, port: int) -> tuple[Any, ...]:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(HTTPServer):
    """Records every request; answers ``status`` with ``location`` when one is set."""

    def __init__(self, host: str, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.address_family = family
        self.seen: list[Seen] = []
        self.status = 204
        self.location: str | None = None
        super().__init__((host, 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(Seen(self.path, dict(self.headers), body))
        self.send_response(self.server.status)
        if self.server.location is not None:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def _serving(server: Receiver) -> Iterator[Receiver]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serving(Receiver("127.0.0.1"))


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    yield from _serving(Receiver("127.0.0.1"))


def _deliver(url: str, allow_hosts: list[str], **kwargs: Any) -> int:
    return deliver(url, BODY, SECRET, 5.0, allow_hosts=allow_hosts, **kwargs)


def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    resolver: Resolver, receiver: Receiver
) -> None:
    """A name that resolves to loopback is refused before any connection."""
    resolver.answers["hook.test"] = [["127.0.0.1"]]
    with pytest.raises(UnsafeCallback) as refused:
        _deliver(f"http://hook.test:{receiver.port}/hook", [])
    assert str(refused.value) == (
        f"callback host 'hook.test' resolves to 127.0.0.1, {PRIVATE}; "
        "ask the operator to allow-list it"
    )
    assert receiver.seen == []


def test_a_name_public_at_submission_and_private_at_delivery_is_refused(
    resolver: Resolver, receiver: Receiver
) -> None:
    """The rebinding case: the submission-time check passes, delivery resolves and refuses."""
    resolver.answers["hook.test"] = [[PUBLIC], ["127.0.0.1"]]
    url = f"http://hook.test:{receiver.port}/hook"
    check_callback_url(url, [])
    with pytest.raises(UnsafeCallback, match=rf"resolves to 127\.0\.0\.1, {PRIVATE}"):
        _deliver(url, [])
    assert resolver.names == ["hook.test", "hook.test"]
    assert receiver.seen == []


@pytest.mark.parametrize(
    ("private", "shown"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.7", "10.0.0.7"),
        ("::1", "::1"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe"),
    ],
)
def test_any_private_address_in_one_answer_refuses(
    resolver: Resolver, receiver: Receiver, private: str, shown: str
) -> None:
    """One answer with a public address first and a private one after it is refused whole."""
    resolver.answers["hook.test"] = [[PUBLIC, private]]
    url = f"http://hook.test:{receiver.port}/hook"
    message = (
        f"callback host 'hook.test' resolves to {shown}, {PRIVATE}; "
        "ask the operator to allow-list it"
    )
    with pytest.raises(UnsafeCallback) as at_submission:
        check_callback_url(url, [])
    assert str(at_submission.value) == message
    with pytest.raises(UnsafeCallback) as at_delivery:
        _deliver(url, [])
    assert str(at_delivery.value) == message
    assert receiver.seen == []


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
    resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivery connects to the address it checked; a later private answer is never asked."""
    resolver.answers["hook.test"] = [[PUBLIC, PUBLIC_V6], ["127.0.0.1"]]
    dialled: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        dialled.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(httpx.ConnectError, match="Connection refused"):
        _deliver("http://hook.test:8080/hook", [])
    assert dialled == [(PUBLIC, 8080), (PUBLIC_V6, 8080)]  # each checked address, in order
    assert resolver.names == ["hook.test"]


def test_an_allow_listed_name_is_delivered_to_its_pinned_address_with_its_host_header(
    resolver: Resolver, receiver: Receiver
) -> None:
    """Allow-listed names reach private addresses; the request carries the original Host."""
    resolver.answers["hook.test"] = [["127.0.0.1"], ["10.255.255.1"]]
    status = _deliver(f"http://hook.test:{receiver.port}/hook?x=1", ["hook.test"])
    assert status == 204
    assert resolver.names == ["hook.test"]
    [seen] = receiver.seen
    assert seen.path == "/hook?x=1"
    assert seen.headers["Host"] == f"hook.test:{receiver.port}"
    assert seen.body == BODY
    timestamp = int(seen.headers[TIMESTAMP_HEADER])
    assert verify(SECRET, timestamp, BODY, seen.headers[SIGNATURE_HEADER])


def test_an_allow_listed_name_tries_its_next_address_when_one_refuses(
    resolver: Resolver, receiver: Receiver
) -> None:
    """A refused connection moves on to the next resolved address, not to a new lookup."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.2", receiver.port))  # bound, never listening: refuses
        resolver.answers["hook.test"] = [["127.0.0.2", "127.0.0.1"]]
        status = _deliver(f"http://hook.test:{receiver.port}/hook", ["hook.test"])
    assert status == 204
    assert [seen.headers["Host"] for seen in receiver.seen] == [f"hook.test:{receiver.port}"]
    assert resolver.names == ["hook.test"]


def test_an_allow_listed_ipv6_loopback_is_delivered(resolver: Resolver) -> None:
    """A pinned IPv6 address is put in the URL in brackets; Host keeps the literal."""
    server = Receiver("::1", socket.AF_INET6)
    for running in _serving(server):
        assert _deliver(f"http://[::1]:{running.port}/hook", ["::1"]) == 204
        assert [seen.headers["Host"] for seen in running.seen] == [f"[::1]:{running.port}"]
    assert resolver.names == []


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("[::1]", "'::1' resolves to ::1"),
        ("[::ffff:127.0.0.1]", "'::ffff:127.0.0.1' resolves to ::ffff:7f00:1"),
        ("[::ffff:7f00:1]", "'::ffff:7f00:1' resolves to ::ffff:7f00:1"),
    ],
)
def test_ipv6_loopback_and_mapped_forms_are_refused_at_delivery(
    resolver: Resolver, receiver: Receiver, host: str, shown: str
) -> None:
    """IPv6 loopback and the IPv4-mapped form of 127.0.0.1 are refused, no name looked up."""
    with pytest.raises(UnsafeCallback) as refused:
        _deliver(f"http://{host}:{receiver.port}/hook", [])
    assert str(refused.value) == (
        f"callback host {shown}, {PRIVATE}; ask the operator to allow-list it"
    )
    assert resolver.names == []
    assert receiver.seen == []


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "2130706433",
            "callback host '2130706433' is a number but not a dotted-decimal IPv4 address",
        ),
        (
            "0x7f000001",
            "callback host '0x7f000001' is a number but not a dotted-decimal IPv4 address",
        ),
        ("0177.0.0.1", "callback_url is not a valid URL: Invalid IPv4 address: '0177.0.0.1'"),
    ],
)
def test_decimal_hex_and_octal_ipv4_forms_are_refused_at_delivery(
    resolver: Resolver, receiver: Receiver, host: str, message: str
) -> None:
    """Numbers a resolver would read as 127.0.0.1 are refused before any lookup."""
    with pytest.raises(UnsafeCallback) as refused:
        _deliver(f"http://{host}:{receiver.port}/hook", [])
    assert str(refused.value) == message
    assert resolver.names == []
    assert receiver.seen == []


def test_a_redirect_is_not_followed(
    resolver: Resolver, receiver: Receiver, second_receiver: Receiver
) -> None:
    """A 3xx is the delivery's answer: its Location is never requested."""
    resolver.answers["hook.test"] = [["127.0.0.1"]]
    receiver.status = 307
    receiver.location = f"http://127.0.0.1:{second_receiver.port}/elsewhere"
    assert _deliver(f"http://hook.test:{receiver.port}/hook", ["hook.test"]) == 307
    assert [seen.path for seen in receiver.seen] == ["/hook"]
    assert second_receiver.seen == []


def test_a_name_that_does_not_resolve_at_delivery_is_a_connection_error(
    resolver: Resolver,
) -> None:
    """A failed lookup at delivery is retried like a refused connection, not a refusal."""
    with pytest.raises(httpx.ConnectError, match=r"^callback host 'gone\.test' does not resolve: "):
        _deliver("https://gone.test/hook", [])
    assert resolver.names == ["gone.test"]


def test_proxies_from_the_environment_are_ignored(
    resolver: Resolver, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve the name itself: delivery never goes through one."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    resolver.answers["hook.test"] = [["127.0.0.1"]]
    assert _deliver(f"http://hook.test:{receiver.port}/hook", ["hook.test"]) == 204
    assert len(receiver.seen) == 1


# ---- https: the pinned connection still names and verifies the original host ----


@dataclass
class Tls:
    cafile: Path
    server: Receiver
    names: list[str | None]


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Tls]:
    """An HTTPS receiver on 127.0.0.1 with a self-signed certificate for hook.test only."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=hook.test", "-addext", "subjectAltName=DNS:hook.test"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = Receiver("127.0.0.1")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for running in _serving(server):
        yield Tls(cert, running, names)


def test_https_delivery_sends_and_verifies_the_original_name(resolver: Resolver, tls: Tls) -> None:
    """SNI and certificate verification use the URL's name, not the pinned address."""
    resolver.answers["hook.test"] = [["127.0.0.1"], ["10.255.255.1"]]
    trust = ssl.create_default_context(cafile=str(tls.cafile))
    url = f"https://hook.test:{tls.server.port}/hook"
    assert _deliver(url, ["hook.test"], ssl_context=trust) == 204
    assert tls.names == ["hook.test"]
    assert [seen.headers["Host"] for seen in tls.server.seen] == [f"hook.test:{tls.server.port}"]
    assert resolver.names == ["hook.test"]


def test_https_delivery_refuses_a_certificate_for_another_name(
    resolver: Resolver, tls: Tls
) -> None:
    """A receiver whose certificate does not name the URL's host gets nothing."""
    resolver.answers["other.test"] = [["127.0.0.1"]]
    trust = ssl.create_default_context(cafile=str(tls.cafile))
    url = f"https://other.test:{tls.server.port}/hook"
    with pytest.raises(httpx.ConnectError, match="Hostname mismatch"):
        _deliver(url, ["other.test"], ssl_context=trust)
    assert tls.names == ["other.test"]
    assert tls.server.seen == []
