"""Which URLs a client accepts and which space a hosted-style URL names: emits and
configuration calls of one client always meet in one space (QA: ``http://hsp.localhost``
without ``space`` emitted ``/default/``, which a ``--domain localhost`` gateway routed to
``/hsp/default/``: accepted, never delivered)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eventgateway import AsyncEventGateway, EventGateway
from eventgateway.sdk._wire import Endpoints
from tests.sdk.test_client import USER, http_subscriber, serve_gateway

LOCAL = "http://localhost:4001"
HSP = "hsp.localhost:4000"
ON_EXAMPLE = {"domain": "example.com"}


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        # space, emit path, config base, Host sent
        ("http://hsp.localhost:4000", {}, ("hsp", "/", LOCAL, HSP)),
        ("http://hsp.localhost:4000", {"space": "hsp"}, ("hsp", "/", LOCAL, HSP)),
        ("http://a.b.localhost:1", {}, ("a", "/", "http://b.localhost:4001", "a.b.localhost:1")),
        ("https://a.example.com", ON_EXAMPLE, ("a", "/", "https://example.com:4001", None)),
        ("http://a.example.com", {"space": "a"}, ("a", "/", "http://example.com:4001", None)),
        # Nothing says these hosts are hosted-style: path routing, as before.
        ("http://gw.example.com", {}, ("default", "/default/", "http://gw.example.com:4001", None)),
        ("http://localhost:4000", {"domain": "localhost"}, ("default", "/default/", LOCAL, None)),
        ("localhost:4000", {"space": "crm"}, ("crm", "/crm/", LOCAL, None)),
    ],
)  # fmt: skip
def test_the_space_comes_from_space_else_from_a_hosted_style_host(url, options, expected):
    endpoints = Endpoints.derive(url, None, options.get("space"), options.get("domain"))

    space, emit_path, config_base, host = expected
    assert (endpoints.space, endpoints.emit_path, endpoints.events.host) == (space, emit_path, host)
    assert endpoints.config.url == config_base


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("http://hsp.localhost:4000", {"space": "other"}, "names the space 'hsp'"),
        ("http://hsp.localhost:4000", {"space": "default"}, "leave space out or pass space='hsp'"),
        ("https://a.example.com", {"space": "b", "domain": "example.com"}, "names the space 'a'"),
        ("https://a.example.org", {"domain": "example.com"}, "is not <space>.example.com"),
    ],
)
def test_a_host_and_a_space_that_disagree_are_refused(url, options, error):
    with pytest.raises(ValueError, match=error):
        EventGateway(url, **options)


@pytest.mark.parametrize(
    "url",
    ["localhost:x", "http://a b:4000", "http://localhost:99999", "http://lo\tcalhost", "mailto:x"],
)
def test_a_url_that_is_not_http_host_port_is_refused_naming_it(url):
    with pytest.raises(ValueError, match=r"is not http\(s\)://host\[:port\]"):
        AsyncEventGateway(url)


def test_a_url_without_a_scheme_is_http_as_documented():
    gateway = EventGateway("localhost:4000", space="crm")

    assert repr(gateway) == (
        "EventGateway(url='http://localhost:4000', config_url='http://localhost:4001', space='crm')"
    )
    documented = " ".join((AsyncEventGateway.__doc__ or "").split())
    assert "``localhost:4000`` means ``http://``" in documented


def test_the_repr_shows_the_hosted_url_and_its_space():
    assert repr(
        EventGateway("http://hsp.localhost:16220", config_url="http://127.0.0.1:16221")
    ) == (
        "EventGateway(url='http://hsp.localhost:16220', config_url='http://127.0.0.1:16221', "
        "space='hsp')"
    )


@pytest.mark.parametrize("method", ["emit", "subscribe"])
def test_the_documented_default_path_is_the_one_sent(method):
    doc: Any = getattr(AsyncEventGateway, method).__doc__
    assert "default ``/<space>/``" in doc

    assert Endpoints.derive("http://localhost:4000", None, "acme").emit_path == "/acme/"


@pytest.mark.parametrize("space", ["x y", "a/b", "ab", "acme?x"])
def test_a_space_the_gateway_would_refuse_is_a_value_error_at_construction(space):
    # QA: these were accepted and emits answered 202 to a path no space has.
    with pytest.raises(ValueError, match=re.escape(f"space {space!r} is not a valid space name")):
        Endpoints.derive("http://localhost:4000", None, space)


async def test_a_hosted_style_url_without_space_configures_and_emits_in_its_space(receiver):
    async with serve_gateway(domain="localhost") as gw:
        hosted = f"http://hsp.localhost:{gw.events_port}"
        async with AsyncEventGateway(hosted, config_url=gw.config_url) as sdk:
            assert sdk.space == "hsp"
            subscription = await http_subscriber(sdk, receiver)
            result = await sdk.emit(event="user.created", data=USER, id="hosted-2")

    assert subscription["path"] == "/hsp/"
    assert (result.status, result.duplicate) == (202, False)
    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["id"] == "hosted-2"
