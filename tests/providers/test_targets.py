"""TargetPolicy, the pure SSRF policy: which addresses are refused, why, and the allow-list."""

from __future__ import annotations

import ipaddress

import pytest

from eventgateway.providers.targets import TargetPolicy, classify, parse_address, parse_networks

DENY = TargetPolicy(allow_private=False)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fd00::1", "private"),
        ("fec0::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("::7f00:1", "reserved"),  # deprecated IPv4-compatible form
        ("4000::1", "reserved"),  # outside 2000::/3, not allocated as global unicast
    ],
)
def test_non_public_addresses_are_refused_with_their_kind(address: str, kind: str):
    refusal = DENY.check(ipaddress.ip_address(address))

    assert refusal is not None
    assert refusal.kind == kind


@pytest.mark.parametrize(
    ("address", "kind", "via"),
    [
        ("::ffff:127.0.0.1", "loopback", "IPv4-mapped 127.0.0.1"),
        ("::ffff:169.254.169.254", "link-local", "IPv4-mapped 169.254.169.254"),
        ("64:ff9b::10.0.0.1", "private", "NAT64 10.0.0.1"),
        ("2002:7f00:1::1", "loopback", "6to4 127.0.0.1"),
        # Teredo: client 127.0.0.1 is stored inverted (0x80ff:fffe).
        ("2001:0:4136:e378:8000:80ff:80ff:fffe", "loopback", "Teredo 127.0.0.1"),
    ],
)
def test_ipv4_embedded_in_ipv6_is_judged_by_the_ipv4_host(address: str, kind: str, via: str):
    refusal = DENY.check(ipaddress.ip_address(address))

    assert refusal is not None
    assert (refusal.kind, refusal.via) == (kind, via)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"],
)
def test_public_addresses_are_allowed(address: str):
    assert DENY.check(ipaddress.ip_address(address)) is None
    assert classify(ipaddress.ip_address(address)) is None


def test_the_open_policy_allows_everything():
    policy = TargetPolicy(allow_private=True)

    assert policy.is_open
    assert policy.check(ipaddress.ip_address("169.254.169.254")) is None


def test_allow_list_entries_are_allowed_and_nothing_else():
    policy = TargetPolicy(allow_list=parse_networks(["127.0.0.1", "10.1.0.0/16"]))

    assert policy.check(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.check(ipaddress.ip_address("10.1.200.3")) is None
    assert policy.check(ipaddress.ip_address("::ffff:127.0.0.1")) is None  # the same host
    assert policy.check(ipaddress.ip_address("127.0.0.2")) is not None
    assert policy.check(ipaddress.ip_address("10.2.0.1")) is not None
    assert policy.check(ipaddress.ip_address("::1")) is not None


def test_the_message_names_address_url_reason_and_both_fixes():
    refusal = DENY.check_text("127.0.0.1")

    assert refusal is not None
    assert refusal.message("http://localhost:8080/") == (
        "target 127.0.0.1 (for http://localhost:8080/) is a loopback address; refused by the "
        "SSRF guard (allow it with --allow-target 127.0.0.1/32 or --allow-private-targets)"
    )


def test_the_suggested_allow_entry_covers_the_refused_address():
    for text in ("::1", "::ffff:10.0.0.1", "169.254.169.254"):
        refusal = DENY.check_text(text)
        assert refusal is not None
        fixed = TargetPolicy(allow_list=parse_networks([refusal.allow_flag]))
        assert fixed.check_text(text) is None, refusal.allow_flag


def test_check_text_reads_literals_and_passes_names():
    assert DENY.check_text("[::1]") is not None
    assert DENY.check_text("localhost") is None  # names are judged once resolved
    assert parse_address("example.com") is None


def test_parse_networks_refuses_what_is_not_a_network_with_the_expected_form():
    with pytest.raises(ValueError, match=r"'intranet' is not an IP address or network; use e\.g\."):
        parse_networks(["intranet"])
    assert parse_networks([" 10.0.0.5/8 "]) == (ipaddress.ip_network("10.0.0.0/8"),)
