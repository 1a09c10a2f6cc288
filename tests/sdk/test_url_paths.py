"""A ``url`` with a path: ``/<space>`` names the space, any other path is refused.

QA: ``EventGateway(url='http://localhost:4000/acme-crm', space='acme-crm')`` was accepted
and emitted to ``/acme-crm/acme-crm/`` — 202, delivered nowhere. `eg deploy` prints that
URL as where to emit, and the README gives it to Node SDK users, so people paste it.
"""

from __future__ import annotations

import pytest

from eventgateway import AsyncEventGateway, EventGateway
from eventgateway.sdk._hosts import UrlPathError
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
    ("url", "options", "message"),
    [
        (
            "http://localhost:4000/acme-crm",
            {"space": "other"},
            "url 'http://localhost:4000/acme-crm' names the space 'acme-crm' in its path, but "
            "space is 'other': pass url='http://localhost:4000' to work in 'other', or leave "
            "space out (or give 'acme-crm') to work in 'acme-crm'",
        ),
        (
            "http://localhost:4000/acme/users",
            {},
            "url 'http://localhost:4000/acme/users' has the path '/acme/users', which no "
            "gateway serves (the APIs are at the root of the host; a path may only name the "
            "space, as http://localhost:4000/<space>): pass url='http://localhost:4000' and "
            "the space as space='NAME'",
        ),
        (
            "http://hsp.localhost:4000/other",
            {},
            "url 'http://hsp.localhost:4000/other' names the space 'other' in its path but "
            "'hsp' in its host (a hosted-style host, routed to /hsp/): pass "
            "url='http://hsp.localhost:4000'",
        ),
    ],
)
def test_any_other_path_or_a_contradicted_one_is_a_value_error_saying_what_to_pass(
    url, options, message
):
    with pytest.raises(UrlPathError) as refused:
        EventGateway(url, **options)

    assert isinstance(refused.value, ValueError)
    assert str(refused.value) == message


@pytest.mark.parametrize("path", ["/a!b", "/ab", "/a%2Fb", "//acme"])
def test_a_path_that_is_no_space_name_is_refused(path):
    with pytest.raises(ValueError, match="which no gateway serves"):
        AsyncEventGateway("http://localhost:4000" + path)


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
