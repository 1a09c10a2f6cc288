"""The SDK's requests and reply handling, without a network: table tests of what each
method sends (URL, headers, body), how replies become results or errors, and when a
failed attempt is retried."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest

from eventgateway.errors import EventGatewayError
from eventgateway.sdk import _emit, _http, _retry, _sse, _wire
from eventgateway.sdk._calls import Calls
from eventgateway.sdk._wire import EmitResult, Endpoints, GatewayError, Reply, Request

CONFIG = "http://localhost:4001/v1/spaces/acme"


def calls(url: str = "http://localhost:4000", **options: Any) -> Calls:
    options = {"config_url": None, "space": "acme", "api_key": None, **options}
    return Calls(url, **options)


def body(request: Request) -> Any:
    assert request.content is not None
    return json.loads(request.content)


# -- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "config_url", "expected"),
    [
        ("http://localhost:4000", None, ("http://localhost:4000", None, CONFIG[:21], "/acme/")),
        ("localhost:4000/", None, ("http://localhost:4000", None, CONFIG[:21], "/acme/")),
        # Hosted style: the host names the space; *.localhost is reached through localhost.
        (
            "http://acme.localhost:4000",
            None,
            ("http://localhost:4000", "acme.localhost:4000", "http://localhost:4001", "/"),
        ),
        (
            "https://acme.example.com",
            None,
            ("https://acme.example.com", None, "https://example.com:4001", "/"),
        ),
        # A path naming the space is the space (any other path: tests/sdk/test_url_paths.py).
        (
            "http://gw.example.com:4000/acme/",
            None,
            ("http://gw.example.com:4000", None, "http://gw.example.com:4001", "/acme/"),
        ),
        ("http://[::1]:4000", None, ("http://[::1]:4000", None, "http://[::1]:4001", "/acme/")),
        ("http://x:1", "http://cfg:9/", ("http://x:1", None, "http://cfg:9", "/acme/")),
        ("http://ACME.Example.com", None, ("http://acme.example.com", None, None, "/")),
    ],
)
def test_endpoints_follow_the_url(url, config_url, expected):
    endpoints = Endpoints.derive(url, config_url, "acme")

    events_base, host, config_base, emit_path = expected
    assert (endpoints.events.base, endpoints.events.host) == (events_base, host)
    assert config_base is None or endpoints.config.base == config_base
    assert endpoints.emit_path == emit_path


@pytest.mark.parametrize("url", ["ftp://x:4000", "http://", "http://:4000"])
def test_urls_that_are_not_http_with_a_host_are_refused(url):
    with pytest.raises(ValueError, match="http"):
        Endpoints.derive(url, None, "acme")


def test_a_localhost_subdomain_keeps_its_name_as_host_and_tls_server_name():
    request = calls("https://acme.localhost:4443").emit("t", id="1")

    assert request.request.url == "https://localhost:4443/"
    assert request.request.headers["Host"] == "acme.localhost:4443"
    assert request.request.extensions == {"sni_hostname": "acme.localhost"}


# -- Configuration API requests ----------------------------------------------------------------

FN = {"functionId": "f", "type": "http", "provider": {"url": "http://h/"}}


@pytest.mark.parametrize(
    ("build", "method", "path", "sent"),
    [
        (
            lambda c: c.create_function("f", "http", {"url": "http://h/"}, signingSecrets=["s"]),
            "POST",
            "/functions",
            {**FN, "signingSecrets": ["s"]},
        ),
        (
            lambda c: c.update_function("f", "http", {"url": "http://h/"}, metadata={"a": "b"}),
            "PUT",
            "/functions/f",
            {**FN, "metadata": {"a": "b"}},
        ),
        (lambda c: c.get_function("a/b c"), "GET", "/functions/a%2Fb%20c", None),
        (lambda c: c.list_functions({}), "GET", "/functions", None),
        (
            lambda c: c.list_functions({"service": "crm", "stage": "a b"}),
            "GET",
            "/functions?metadata.service=crm&metadata.stage=a+b",
            None,
        ),
        (lambda c: c.delete_function("f"), "DELETE", "/functions/f", None),
        (
            lambda c: c.create_event_type("a.b", authorizer_id=None, metadata=None),
            "POST",
            "/eventtypes",
            {"name": "a.b"},
        ),
        (
            lambda c: c.update_event_type("a.b", authorizer_id="auth", metadata=None),
            "PUT",
            "/eventtypes/a.b",
            {"name": "a.b", "authorizerId": "auth"},
        ),
        (lambda c: c.list_event_types({"k": "v"}), "GET", "/eventtypes?metadata.k=v", None),
        (
            lambda c: c.subscribe("user.created", "f"),
            "POST",
            "/subscriptions",
            {"type": "async", "eventType": "user.created", "functionId": "f", "path": "/acme/"},
        ),
        (
            lambda c: c.subscribe("http.request", "f", type="sync", path="/acme/u", method="GET"),
            "POST",
            "/subscriptions",
            {
                "type": "sync",
                "eventType": "http.request",
                "functionId": "f",
                "path": "/acme/u",
                "method": "GET",
            },
        ),
        (lambda c: c.update_subscription("YXN5", {"x": 1}), "PUT", "/subscriptions/YXN5", {"x": 1}),
        (lambda c: c.unsubscribe("YXN5"), "DELETE", "/subscriptions/YXN5", None),
        (
            lambda c: c.create_cors("GET", "/acme/u", allowed_origins=("http://a",)),
            "POST",
            "/cors",
            {"method": "GET", "path": "/acme/u", "allowedOrigins": ["http://a"]},
        ),
        # CORS ids are escaped already: verbatim, never escaped twice.
        (lambda c: c.delete_cors("GET%2Fusers%2F:id"), "DELETE", "/cors/GET%2Fusers%2F:id", None),
        (lambda c: c.bundle_exists("ab12"), "GET", "/bundles/ab12", None),
        (
            lambda c: c.logs("f", since="10m", limit=5, filter="a b"),
            "GET",
            "/functions/f/logs?since=10m&limit=5&filter=a+b",
            None,
        ),
        (lambda c: c.get_event("e/1"), "GET", "/events/e%2F1", None),
        (
            lambda c: c.list_events(state="dead", subscription_id=None, limit=10),
            "GET",
            "/events?state=dead&limit=10",
            None,
        ),
        (
            lambda c: c.list_dead_letters(subscription_id="s", since=1.5, until=None, limit=100),
            "GET",
            "/deadletters?subscriptionId=s&since=1.5&limit=100",
            None,
        ),
        (
            lambda c: c.redrive(ids=None, subscription_id="s", since=None, until="2026", all=False),
            "POST",
            "/deadletters/redrive",
            {"subscriptionId": "s", "until": "2026"},
        ),
        (
            lambda c: c.redrive(ids=["a"], subscription_id=None, since=None, until=None, all=True),
            "POST",
            "/deadletters/redrive",
            {"ids": ["a"], "all": True},
        ),
        (
            lambda c: c.replay(ids=("a", "b"), subscription_id=None, since=None, until=None),
            "POST",
            "/events/replay",
            {"ids": ["a", "b"]},
        ),
        (
            lambda c: c.replay(ids=None, subscription_id="s", since="10m", until=1.5),
            "POST",
            "/events/replay",
            {"subscriptionId": "s", "since": "10m", "until": "1.5"},
        ),
    ],
)
def test_configuration_requests(build, method, path, sent):
    request = build(calls()).request

    assert (request.method, request.url) == (method, CONFIG + path)
    assert request.retry == "unsent"
    if sent is None:
        assert request.content is None
        assert "Content-Type" not in request.headers
    else:
        assert body(request) == sent
        assert request.headers["Content-Type"] == "application/json"


def test_bundles_logs_stream_status_and_purges():
    c = calls(api_key="k")

    upload = c.upload_bundle(b"PK\x03\x04").request
    assert (upload.content, upload.headers["Content-Type"]) == (b"PK\x03\x04", "application/zip")
    stream = c.tail_logs("f", since=None, filter="x")
    assert stream.url == CONFIG + "/functions/f/logs/stream?filter=x"
    assert stream.headers["Accept"] == "text/event-stream"
    status = c.status().request
    assert (status.url, status.retry) == ("http://localhost:4001/v1/status", "never")
    purges = [
        p.request for p in c.purge_dead_letters(ids=["a", "b"], subscription_id=None, all=False)
    ]
    assert [(p.method, p.url) for p in purges] == [
        ("DELETE", CONFIG + "/deadletters/a"),
        ("DELETE", CONFIG + "/deadletters/b"),
    ]
    [everything] = c.purge_dead_letters(ids=None, subscription_id=None, all=True)
    assert everything.request.url == CONFIG + "/deadletters?all=true"
    assert {r.headers["Authorization"] for r in [upload, stream, status, *purges]} == {"Bearer k"}
    with pytest.raises(ValueError, match="not both"):
        c.purge_dead_letters(ids=["a"], subscription_id="s", all=False)


# -- emits -------------------------------------------------------------------------------------

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_structured_emit_is_a_cloudevents_1_0_document():
    call = calls(api_key="k").emit("user.created", {"a": 1}, id="e1", partition_key="p")
    request = call.request

    assert (request.method, request.url, request.retry) == (
        "POST",
        "http://localhost:4000/acme/",
        "unsent",  # a sync subscription on the path would run again for each copy
    )
    assert request.headers == {
        "Authorization": "Bearer k",
        "Content-Type": "application/cloudevents+json",
    }
    event = body(request)
    assert RFC3339.fullmatch(event.pop("time"))
    assert event == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/eventgateway/sdk",
        "type": "user.created",
        "partitionkey": "p",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }


def test_structured_emit_details():
    assert "data" not in body(calls().emit("t").request)  # no data: no data attributes
    assert len(body(calls().emit("t").request)["id"]) == 36  # a new UUID
    binary = body(calls().emit("t", b"\x00\x01", data_content_type="image/png").request)
    assert binary["data_base64"] == base64.b64encode(b"\x00\x01").decode()
    assert binary["datacontenttype"] == "image/png"


def test_binary_emit_puts_attributes_in_escaped_headers():
    request = calls().emit("t", "héllo", mode="binary", id="a b", data_content_type="text/plain")
    headers = request.request.headers

    assert request.request.content == "héllo".encode()
    assert headers["Content-Type"] == "text/plain"
    assert (headers["ce-specversion"], headers["ce-type"], headers["ce-id"]) == (
        "1.0",
        "t",
        "a%20b",
    )
    assert headers["ce-source"] == "/eventgateway/sdk"
    assert RFC3339.fullmatch(headers["ce-time"])
    assert "ce-partitionkey" not in headers


def test_legacy_emit_is_the_event_header_and_the_data():
    request = calls().emit("user.created", {"a": 1}, mode="legacy").request

    assert request.headers == {"Event": "user.created", "Content-Type": "application/json"}
    assert body(request) == {"a": 1}
    assert request.retry == "unsent"  # the gateway gives each one a new id


def test_a_cloudevent_mapping_is_sent_as_is():
    cloudevent = {"specversion": "1.0", "id": "x"}
    request = calls().emit(cloudevent=cloudevent, path="acme/x").request

    assert body(request) == cloudevent
    assert (request.url, request.retry) == ("http://localhost:4000/acme/x", "unsent")


@pytest.mark.parametrize(
    "arguments",
    [
        {"event": "t"},
        {"event": "t", "mode": "binary", "id": "b"},
        {"cloudevent": {"specversion": "1.0", "id": "x"}},
        {"cloudevent": {"eventType": "t", "eventID": "x"}},
    ],
)
def test_an_emit_said_idempotent_may_be_repeated_after_it_was_sent(arguments):
    assert calls().emit(**arguments, idempotent=True).request.retry == "idempotent"


def test_batches_paths_and_extra_headers():
    batch = calls().emit_batch([{"id": "1"}, {"id": "2"}], path="/").request
    assert (batch.url, batch.retry) == ("http://localhost:4000/", "unsent")
    assert batch.headers["Content-Type"] == "application/cloudevents-batch+json"
    said = calls().emit_batch([{"id": "1"}, {"eventID": "2"}], idempotent=True).request
    assert said.retry == "idempotent"
    with pytest.raises(ValueError, match="an id in every event"):
        calls().emit_batch([{"id": "1"}, {}], idempotent=True)

    hosted = calls("http://acme.example.com").emit("t").request
    assert hosted.url == "http://acme.example.com/"
    extra = calls().emit("t", headers={"content-type": "application/x+json", "X-A": "1"}).request
    assert extra.headers == {"content-type": "application/x+json", "X-A": "1"}


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"event": "t", "cloudevent": {"id": "1"}}, "cloudevent= is sent as is"),
        ({"cloudevent": {"id": "1"}, "mode": "binary"}, "mode"),
        ({}, "emit needs event="),
        ({"event": "t", "mode": "json"}, "mode 'json' is not one of"),
        ({"event": "t", "mode": "legacy", "id": "1"}, "legacy mode"),
        ({"event": "t", "mode": "legacy", "idempotent": True}, "needs an event id"),
        ({"cloudevent": {"eventType": "t"}, "idempotent": True}, "needs an event id"),
    ],
)
def test_emit_arguments_that_do_not_go_together(arguments, error):
    with pytest.raises(ValueError, match=error):
        calls().emit(**arguments)


def test_data_that_cannot_be_sent():
    with pytest.raises(TypeError, match="pass bytes or str"):
        calls().emit("t", {"a": 1}, mode="binary", data_content_type="text/plain")
    with pytest.raises(ValueError, match="Out of range float"):
        calls().emit("t", float("nan"))
    assert _emit.encode_data("x", "application/json") == b'"x"'
    assert _emit.is_json_type("application/problem+json; charset=utf-8")


# -- replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "raw", "message"),
    [
        (
            404,
            b'{"errors":[{"message":"Function \\"f\\" not found."}]}\n',
            'Function "f" not found.',
        ),
        (404, b"404 page not found", "404 page not found"),
        (403, b"", "403 Forbidden"),
        (599, b"", "599 Error"),
        (500, b'{"detail": "x"}', '{"detail": "x"}'),
        (400, b'{"errors": []}', '{"errors": []}'),
    ],
)
def test_error_messages(status, raw, message):
    with pytest.raises(GatewayError) as caught:
        _wire.to_object(Reply(status, {}, raw))

    assert (caught.value.status, caught.value.message, str(caught.value)) == (
        status,
        message,
        message,
    )
    assert repr(caught.value) == f"GatewayError(status={status}, message={message!r})"
    assert isinstance(caught.value, EventGatewayError)


def test_emit_results():
    accepted = _wire.to_emit_result(Reply(202, {"X-EventGateway-Duplicate": "true"}, b""))
    assert accepted == EmitResult(202, {"x-eventgateway-duplicate": "true"}, b"", True)
    redirect = _wire.to_emit_result(Reply(302, {}, b'{"a": "\xc3\xa9"}'))
    assert (redirect.duplicate, redirect.json(), redirect.text) == (False, {"a": "é"}, '{"a": "é"}')
    with pytest.raises(GatewayError, match="Service Unavailable"):
        _wire.to_emit_result(Reply(503, {}, b'{"errors":[{"message":"Service Unavailable"}]}'))


def test_reply_parsers():
    assert _wire.member("functions")(Reply(200, {}, b'{"functions": []}')) == []
    assert _wire.to_exists(Reply(404, {}, b"")) is False
    assert _wire.to_exists(Reply(200, {}, b"{}")) is True
    assert _wire.to_alive(Reply(503, {}, b"")) is False
    _wire.to_none(Reply(204, {}, b""))  # no error
    for reply, error in [
        (Reply(200, {}, b'{"x": 1}'), "has no 'functions'"),
        (Reply(200, {}, b"[1]"), "not an object"),
        (Reply(200, {}, b"<html>"), "not JSON"),
        (Reply(202, {}, b""), "seems to point at the Events API"),
    ]:
        with pytest.raises(GatewayError, match=error):
            _wire.member("functions")(reply)


# -- retries -----------------------------------------------------------------------------------

IDEMPOTENT = Request("POST", "u", {}, retry="idempotent")
POST = Request("POST", "u", {}, retry="unsent")
PROBE = Request("GET", "u", {}, retry="never")
AFTER_0 = {"retry-after": "0"}


@pytest.mark.parametrize(
    ("request_", "attempt", "outcome", "delay_s"),
    [
        (POST, 0, Reply(429, AFTER_0, b""), 0.0),
        (POST, 2, Reply(503, {"retry-after": "0.5"}, b""), 0.5),
        (POST, 0, Reply(429, {"retry-after": "1"}, b""), 1.0),
        (POST, 0, Reply(429, {"retry-after": "60"}, b""), 5.0),
        (POST, 0, Reply(429, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, b""), 0.2),
        (POST, 0, Reply(429, {"retry-after": "nan"}, b""), 0.2),
        # Without Retry-After, a 503 may be a sync function's own answer after it acted.
        (POST, 0, Reply(503, {}, b""), None),
        (POST, 0, Reply(429, {}, b""), None),
        (IDEMPOTENT, 2, Reply(503, {}, b""), 0.8),
        (POST, 0, Reply(500, AFTER_0, b""), None),
        (POST, 0, Reply(202, {}, b""), None),
        (POST, 3, Reply(429, AFTER_0, b""), None),  # retries spent
        (POST, 0, False, 0.2),  # connection failed: nothing was sent
        (POST, 0, True, None),  # read timeout: the POST may have been applied
        (IDEMPOTENT, 1, True, 0.4),  # e.g. async-only: the gateway drops a repeated id
        (PROBE, 0, Reply(503, AFTER_0, b""), None),
        (PROBE, 0, False, None),
    ],
)
def test_retry_delays(request_, attempt, outcome, delay_s):
    if isinstance(outcome, Reply):
        assert _retry.retry_delay_s(request_, attempt, 3, reply=outcome) == delay_s
    else:
        assert _retry.retry_delay_s(request_, attempt, 3, sent=outcome) == delay_s


def test_backoff_is_capped():
    assert _retry.retry_delay_s(IDEMPOTENT, 9, 10, reply=Reply(429, {}, b"")) == _retry.MAX_WAIT_S


@pytest.mark.parametrize(
    ("error", "sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.PoolTimeout("busy"), False),
        # httpcore raises these only for bytes it could not write: the body is incomplete.
        (httpx.WriteTimeout("slow"), False),
        (httpx.WriteError("reset"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("closed"), True),
    ],
)
def test_which_transport_failures_may_have_reached_the_gateway(error, sent):
    assert _http.failure(error)[0] is sent


# -- log streams -------------------------------------------------------------------------------


def test_server_sent_events_yield_each_data_object():
    decoder = _sse.SseDecoder()
    lines = [
        ": keep-alive",
        "",
        'data: {"message": "a"}',
        "",
        "event: x",
        "data: {",
        'data: "b": 2}',
    ]
    lines += ["", "data:[]"]

    assert [item for line in lines if (item := decoder.feed(line)) is not None] == [
        {"message": "a"},
        {"b": 2},
    ]
    with pytest.raises(GatewayError, match="not a JSON object"):
        decoder.feed("")
