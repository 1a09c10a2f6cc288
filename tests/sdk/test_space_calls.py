"""What the spaces and API keys methods send, without a network (the pure call layer)."""

from __future__ import annotations

import datetime
import inspect
import json
from typing import Any

import pytest

from eventgateway import AsyncEventGateway, EventGateway, GatewayError
from eventgateway.sdk._calls import Calls
from eventgateway.sdk._space_calls import rfc3339
from eventgateway.sdk._wire import Reply, Request

SPACES = "http://localhost:4001/v1/spaces"
SPACE_METHODS = (
    "claim_space",
    "get_space",
    "list_spaces",
    "update_space",
    "delete_space",
    "create_key",
    "list_keys",
    "revoke_key",
)


def calls(**options: Any) -> Calls:
    options = {"config_url": None, "space": "acme", "api_key": None, **options}
    return Calls("http://localhost:4000", **options)


def body(request: Request) -> Any:
    assert request.content is not None
    return json.loads(request.content)


@pytest.mark.parametrize(
    ("build", "method", "path", "sent"),
    [
        (
            lambda c: c.claim_space("acme-crm", emit_requires_key=None),
            "POST",
            "",
            {"name": "acme-crm"},
        ),
        (
            lambda c: c.claim_space("acme-crm", emit_requires_key=True),
            "POST",
            "",
            {"name": "acme-crm", "emitRequiresKey": True},
        ),
        (lambda c: c.list_spaces(), "GET", "", None),
        (lambda c: c.get_space(None), "GET", "/acme", None),
        (lambda c: c.get_space("a/b"), "GET", "/a%2Fb", None),
        (
            lambda c: c.update_space(emit_requires_key=False),
            "PATCH",
            "/acme",
            {"emitRequiresKey": False},
        ),
        (lambda c: c.delete_space(None), "DELETE", "/acme", None),
        (lambda c: c.delete_space("other"), "DELETE", "/other", None),
        (
            lambda c: c.create_key(("admin", "emit"), expires_at=None),
            "POST",
            "/acme/keys",
            {"scopes": ["admin", "emit"]},
        ),
        (
            lambda c: c.create_key("emit", expires_at="2030-01-01T00:00:00Z"),
            "POST",
            "/acme/keys",
            {"scopes": ["emit"], "expiresAt": "2030-01-01T00:00:00Z"},
        ),
        (lambda c: c.list_keys(), "GET", "/acme/keys", None),
        (lambda c: c.revoke_key("0123/abc"), "DELETE", "/acme/keys/0123%2Fabc", None),
    ],
)
def test_space_and_key_requests(build, method, path, sent):
    request = build(calls()).request

    assert (request.method, request.url) == (method, SPACES + path)
    # Never retried once it may have reached the gateway: a repeated claim would answer
    # 409 and the key of the first one would be lost.
    assert request.retry == "unsent"
    if sent is None:
        assert request.content is None
        assert "Content-Type" not in request.headers
    else:
        assert body(request) == sent
        assert request.headers["Content-Type"] == "application/json"


def test_the_key_goes_as_a_bearer_token_on_config_calls_and_emits():
    c = calls(api_key="egk_k")

    sent = [
        c.claim_space("x", emit_requires_key=None).request,
        c.list_keys().request,
        c.list_functions({}).request,
        c.emit("user.created", {"a": 1}).request,
        c.emit("user.created", {"a": 1}, mode="legacy").request,
    ]
    assert {request.headers["Authorization"] for request in sent} == {"Bearer egk_k"}
    assert "Authorization" not in calls().list_keys().request.headers


def test_replies_are_read_as_objects_and_lists():
    claimed = {"name": "acme", "apiKey": "egk_s", "keyId": "k", "scopes": ["admin"]}

    assert (
        calls()
        .claim_space("acme", emit_requires_key=None)
        .parse(Reply(201, {}, json.dumps(claimed).encode()))
        == claimed
    )
    assert calls().list_spaces().parse(Reply(200, {}, b'{"spaces":[{"name":"acme"}]}')) == [
        {"name": "acme"}
    ]
    assert calls().list_keys().parse(Reply(200, {}, b'{"keys":[]}')) == []
    assert calls().revoke_key("k").parse(Reply(204, {}, b"")) is None
    with pytest.raises(GatewayError) as caught:
        calls().claim_space("acme", emit_requires_key=None).parse(
            Reply(409, {}, b'{"errors":[{"message":"space acme is already claimed"}]}')
        )
    assert (caught.value.status, caught.value.message) == (409, "space acme is already claimed")


def test_expiry_times_are_sent_as_rfc3339_utc():
    tz = datetime.timezone(datetime.timedelta(hours=2))

    assert rfc3339("2030-01-01T00:00:00Z") == "2030-01-01T00:00:00Z"
    assert rfc3339(datetime.datetime(2030, 1, 1, 2, 0, 0, 999, tzinfo=tz)) == "2030-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="time zone"):
        calls().create_key(["emit"], expires_at=datetime.datetime(2030, 1, 1))


@pytest.mark.parametrize("client", [EventGateway, AsyncEventGateway])
def test_both_clients_offer_the_space_methods_documented(client):
    for name in SPACE_METHODS:
        method = getattr(client, name)
        assert method.__doc__, name
        assert inspect.iscoroutinefunction(method) == (client is AsyncEventGateway), name
    assert inspect.signature(EventGateway.create_key) == inspect.signature(
        AsyncEventGateway.create_key
    )
