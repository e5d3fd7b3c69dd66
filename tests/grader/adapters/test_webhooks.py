"""Callback URL checks: what may receive a webhook. Address literals only (no DNS lookups)."""

from __future__ import annotations

import pytest

from grader.adapters.webhooks import check_callback_url, sign, verify
from grader.errors import UnsafeCallback


@pytest.mark.parametrize(
    ("url", "embedded"),
    [
        ("http://[64:ff9b::7f00:1]/", "127.0.0.1"),  # NAT64 well-known prefix
        ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254"),
        ("http://[64:ff9b::a00:1]/hook", "10.0.0.1"),
        ("http://[::ffff:0:7f00:1]/", "127.0.0.1"),  # IPv4-translated (SIIT)
        ("http://[::a9fe:a9fe]/", "169.254.169.254"),  # IPv4-compatible
        ("http://[2002:7f00:1::1]/", "127.0.0.1"),  # 6to4
        ("http://[2002:c0a8:101::1]/", "192.168.1.1"),
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(url: str, embedded: str) -> None:
    """An IPv6 address that carries a private IPv4 address is refused, naming both."""
    with pytest.raises(UnsafeCallback, match=rf"which embeds {embedded}, a private, loopback"):
        check_callback_url(url, [])


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped: Python already calls it private
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::1]/",
        "http://127.0.0.1/",
        "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://224.0.0.1/",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(url: str) -> None:
    """Non-public addresses, in any spelling Python recognises, are refused."""
    with pytest.raises(UnsafeCallback, match=r"a private, loopback, link-local or reserved"):
        check_callback_url(url, [])


def test_the_local_use_nat64_prefix_is_refused_whatever_it_embeds() -> None:
    """64:ff9b:1::/48 is for local use only (RFC 8215): never a public receiver."""
    with pytest.raises(UnsafeCallback, match=r"in the local-use NAT64 prefix 64:ff9b:1::/48"):
        check_callback_url("http://[64:ff9b:1::808:808]/", [])


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0x7f.1", "127.1", "1.2.3", "017700000001", "8.8.8.8."],
)
def test_numbers_that_only_some_parsers_read_as_ipv4_are_refused(host: str) -> None:
    """Decimal, hex, short and octal IPv4 spellings are refused before any resolution."""
    with pytest.raises(UnsafeCallback) as refused:
        check_callback_url(f"http://{host}/", [])
    assert str(refused.value) == (
        f"callback host {host!r} is a number but not a dotted-decimal IPv4 address"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://0177.0.0.1/",
            "callback_url is not a valid URL: Invalid IPv4 address: '0177.0.0.1'",
        ),
        ("http://example.org:99999/", "callback_url is not a valid URL: Port out of range 0-65535"),
        (
            "http://example.org:-1/",
            "callback_url is not a valid URL: Port could not be cast to integer value as '-1'",
        ),
        (
            "http://example.org:abc/",
            "callback_url is not a valid URL: Port could not be cast to integer value as 'abc'",
        ),
        ("http://example.org:0/", "callback_url port must be between 1 and 65535, got 0"),
        ("http://[::1/x", "callback_url is not a valid URL: Invalid IPv6 URL"),
        (
            "http://[zz::1]/",
            "callback_url is not a valid URL: "
            "'zz::1' does not appear to be an IPv4 or IPv6 address",
        ),
        (
            "http://ex\tample.org/",
            "callback_url is not a valid URL: Invalid non-printable ASCII "
            "character in URL, '\\t' at position 9.",
        ),
        (
            "ftp://example.org/",
            "callback_url must be an http(s) URL with a host, got 'ftp://example.org/'",
        ),
        ("http:///hook", "callback_url must be an http(s) URL with a host, got 'http:///hook'"),
        ("http://user:pw@example.org/", "callback_url must not carry credentials"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    """URLs either parser cannot read, odd ports, other schemes and credentials are refused."""
    with pytest.raises(UnsafeCallback) as refused:
        check_callback_url(url, [])
    assert str(refused.value) == message


def test_allow_listed_hosts_still_need_a_valid_port() -> None:
    """The allow-list skips the address check, not the URL check."""
    check_callback_url("http://127.0.0.1:8080/hook", ["127.0.0.1"])
    with pytest.raises(UnsafeCallback, match="Port out of range"):
        check_callback_url("http://127.0.0.1:99999/hook", ["127.0.0.1"])


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/hook",
        "http://[2001:4860:4860::8888]:8443/hook",
        "http://[64:ff9b::808:808]/",  # NAT64 of a public address
        "http://[2002:808:808::1]/",  # 6to4 of a public address
    ],
)
def test_public_addresses_are_accepted(url: str) -> None:
    """Public addresses pass, including IPv6 forms of public IPv4 addresses."""
    check_callback_url(url, [])


def test_a_signature_verifies_over_the_raw_body_only() -> None:
    """What a receiver checks: the same body verifies, a changed byte does not."""
    signature = sign("s" * 40, 1_800_000_000, b'{"id": "x"}')
    assert verify("s" * 40, 1_800_000_000, b'{"id": "x"}', signature, max_age_seconds=10**10)
    assert not verify("s" * 40, 1_800_000_000, b'{"id": "y"}', signature, max_age_seconds=10**10)
