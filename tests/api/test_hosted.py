"""Hosted-style routing: which Host names a space (``api/hosted.py``)."""

from __future__ import annotations

import pytest

from eventgateway.api.hosted import HostedRouting


@pytest.mark.parametrize(
    ("domain", "host", "routed"),
    [
        (None, "acme.localhost:4000", "/acme/x"),
        (None, "ACME.LocalHost", "/acme/x"),  # Host names are case-insensitive
        (None, "a.b.localhost:4000", "/a/x"),  # the first label, as the original took it
        (None, "localhost:4000", "/x"),
        (None, "127.0.0.1:4000", "/x"),
        (None, "[::1]:4000", "/x"),
        (None, "acme.localhost.example.org", "/x"),
        (None, "acme.example.com", "/x"),
        (None, "", "/x"),
        ("example.com", "acme.example.com", "/acme/x"),
        ("example.com", "acme.localhost:4000", "/acme/x"),  # localhost stays on
        ("example.com", "example.com", "/x"),
        ("example.com", "acme.notexample.com", "/x"),
        ("localhost", "acme.localhost", "/acme/x"),
    ],
)
def test_a_space_subdomain_of_localhost_or_the_domain_prefixes_the_path(
    domain: str | None, host: str, routed: str
) -> None:
    assert HostedRouting(domain).path(host, "/x") == routed
