"""A ``url`` with a path: a last segment naming the space is dropped, any other path is
a prefix (a gateway behind a reverse proxy).

QA: ``EventGateway(url='http://localhost:4000/acme-crm', space='acme-crm')`` was accepted
and emitted to ``/acme-crm/acme-crm/`` — 202, delivered nowhere. `eg deploy` prints that
URL as where to emit, and the README gives it to Node SDK users, so people paste it.
"""

from __future__ import annotations

import pytest

from eventgateway import AsyncEventGateway, EventGateway
from eventgateway.sdk._wire import Endpoints
from tests.sdk.test_client import USER, http_subscriber, serve_gateway

LOCAL_CONFIG = "http://localhost:4001"


@pytest.mark.parametrize(
    ("url", "space"),
    [
        ("http://localhost:4000/acme-crm", None),
        ("http://localhost:4000/acme-crm/", None),
        ("http://localhost:4000/acme-crm", "acme-crm"),
        ("localhost:4000/acme-crm", None),
    ],
)
def test_a_path_of_one_space_name_is_the_base_url_and_that_space(url, space):
    endpoints = Endpoints.derive(url, None, space)

    assert (endpoints.events.url, endpoints.space, endpoints.emit_path) == (
        "http://localhost:4000",
        "acme-crm",
        "/acme-crm/",
    )
    assert endpoints.config.url == LOCAL_CONFIG
    assert repr(EventGateway(url, space=space)) == (
        "EventGateway(url='http://localhost:4000', config_url='http://localhost:4001', "
        "space='acme-crm')"
    )


@pytest.mark.parametrize("url", ["http://localhost:4000", "http://localhost:4000/"])
def test_no_path_is_as_before(url):
    assert Endpoints.derive(url, None, "acme").emit_path == "/acme/"


def test_a_hosted_style_url_keeps_its_rules_and_may_repeat_its_space_as_the_path():
    plain = Endpoints.derive("http://hsp.localhost:4000", None, None)
    repeated = Endpoints.derive("http://hsp.localhost:4000/hsp", None, None)

    assert (plain.space, plain.emit_path, plain.events.host) == ("hsp", "/", "hsp.localhost:4000")
    assert repeated == plain


@pytest.mark.parametrize(
    ("url", "space", "base", "emit_path"),
    [
        # A reverse proxy's prefix (an ingress rule): kept, the space below it.
        (
            "https://api.example.com/eventgateway",
            "acme",
            "https://api.example.com/eventgateway",
            "/acme/",
        ),
        ("https://api.example.com/eg/acme", "acme", "https://api.example.com/eg", "/acme/"),
        ("https://api.example.com/eg/acme/", None, "https://api.example.com/eg/acme", "/default/"),
        # A space other than the path's: the path is a prefix, as before (the gateway logs
        # a hint when such an event reaches no subscription).
        ("http://localhost:4000/acme-crm", "other", "http://localhost:4000/acme-crm", "/other/"),
        # Not a space name: a prefix.
        ("http://localhost:4000/a!b", None, "http://localhost:4000/a!b", "/default/"),
    ],
)
def test_any_other_path_is_a_prefix(url, space, base, emit_path):
    endpoints = Endpoints.derive(url, None, space)

    assert (endpoints.events.url, endpoints.emit_path) == (base, emit_path)


def test_a_hosted_host_and_a_path_naming_another_space_is_a_prefix():
    endpoints = Endpoints.derive("http://hsp.localhost:4000/other", None, None)

    assert (endpoints.space, endpoints.emit_path) == ("hsp", "/")
    assert endpoints.events.url == "http://hsp.localhost:4000/other"


async def test_an_emit_to_a_space_url_reaches_the_space_subscription(receiver):
    async with serve_gateway() as gw:
        async with gw.client() as setup:
            subscription = await http_subscriber(setup, receiver)
        space_url = f"{gw.url}/acme-crm"
        async with AsyncEventGateway(space_url, config_url=gw.config_url) as sdk:
            result = await sdk.emit(event="user.created", data=USER, id="path-1")

    assert subscription["path"] == "/acme-crm/"
    assert result.status == 202
    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["id"] == "path-1"
