"""The default resolver: the system's getaddrinfo, answered in aiohttp's result shape."""

from __future__ import annotations

import socket

import pytest

from eventgateway.providers.resolver import ThreadedResolver


async def test_a_name_resolves_to_its_addresses_with_the_port() -> None:
    results = await ThreadedResolver().resolve("localhost", 8080, socket.AF_UNSPEC)

    assert results
    assert {r["host"] for r in results} & {"127.0.0.1", "::1"}
    assert {r["port"] for r in results} == {8080}
    assert {r["hostname"] for r in results} == {"localhost"}
    assert all(r["family"] in (socket.AF_INET, socket.AF_INET6) for r in results)


async def test_an_ip_literal_resolves_to_itself() -> None:
    (result,) = await ThreadedResolver().resolve("127.0.0.1", 80, socket.AF_INET)

    assert (result["host"], result["port"], result["family"]) == ("127.0.0.1", 80, socket.AF_INET)


async def test_an_unknown_name_is_a_resolver_error() -> None:
    with pytest.raises(socket.gaierror):
        await ThreadedResolver().resolve("no-such-host.invalid", 80, socket.AF_UNSPEC)
