"""The HTTP binding in: rule precedence, legacy mode and http.request (contract §2.2–§2.4)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from eventgateway.errors import EventParseError
from eventgateway.events.codec import encode_json
from eventgateway.events.http import authorizer_request, http_request_data, parse_request
from eventgateway.events.model import TRANSFORMED_SOURCE, CloudEvent
from tests.events.factories import STRUCTURED, request

CE01 = {
    "eventType": "user.created",
    "cloudEventsVersion": "0.1",
    "source": "/services/users",
    "eventID": "e-1",
    "data": {"name": "Ada"},
}
CE10 = {"specversion": "1.0", "id": "e-1", "source": "/services/users", "type": "user.created"}
V1_HEADERS = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/bin", "ce-type": "binary.v1"}
V01_HEADERS = {
    "CE-EventType": "binary.v01",
    "CE-CloudEventsVersion": "0.1",
    "CE-Source": "/bin",
    "CE-EventID": "b-1",
}
TRANSFORMED = {"eventgateway": {"transformed": "true", "transformation-version": "0.1"}}


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def parse_one(headers: Any, raw: bytes = b"", **kwargs: Any) -> CloudEvent:
    [event] = parse_request(request(headers, raw, **kwargs))
    return event


# --- precedence (A, then B, then C, then D) ----------------------------------------------


@pytest.mark.parametrize(
    ("headers", "raw", "expected_type"),
    [
        # A wins over binary headers and the Event header.
        ({**STRUCTURED, **V1_HEADERS, "Event": "legacy"}, body(CE01), "user.created"),
        ({**STRUCTURED, **V01_HEADERS}, body(CE10), "user.created"),
        # B (1.0) wins over B (0.1) and over C.
        ({**V1_HEADERS, **V01_HEADERS, "Event": "legacy"}, b"", "binary.v1"),
        (
            {**V01_HEADERS, "Event": "legacy", "Content-Type": "application/json"},
            b"{}",
            "binary.v01",
        ),
        # C: the legacy Event header.
        ({"Event": "legacy", "Content-Type": "text/plain"}, b"x", "legacy"),
        # D: everything else.
        ({"Content-Type": "text/plain"}, b"x", "http.request"),
        ({}, b"", "http.request"),
        ({"Event": ""}, b"", "http.request"),
    ],
)
def test_rules_apply_in_contract_order(headers, raw, expected_type):
    assert parse_one(headers, raw).type == expected_type


def test_structured_cloudevent_sent_as_application_json_without_event_header_is_http_request():
    event = parse_one({"Content-Type": "application/json"}, body(CE01))

    assert event.type == "http.request"
    assert event.datacontenttype == "application/json"
    assert event.data["body"] == CE01


# --- C: legacy mode ----------------------------------------------------------------------


def test_legacy_json_body_that_validates_as_cloudevent_uses_the_body_type():
    headers = {"Event": "header.type", "Content-Type": "application/json"}

    event = parse_one(headers, body(CE01))

    assert event.type == "user.created"
    assert event.id == "e-1"
    assert event.source == "/services/users"
    assert event.extensions == {}
    assert event.data == msgspec.Raw(b'{"name": "Ada"}')


def test_legacy_json_body_may_also_be_a_1_0_cloudevent():
    headers = {"Event": "header.type", "Content-Type": "application/json; charset=utf-8"}

    event = parse_one(headers, body(CE10))

    assert (event.specversion, event.type) == ("1.0", "user.created")


@pytest.mark.parametrize(
    ("content_type", "raw", "media", "data"),
    [
        ("application/json", b'{"a": 1}', "application/json", {"a": 1}),
        ("application/json; charset=utf-8", b'{"a": 1}', "application/json", {"a": 1}),
        ("application/json", b"[1]", "application/json", b"[1]"),
        ("application/json", body({**CE01, "source": "bad source"}), "application/json", None),
        # Only exactly application/json is tried as a CloudEvent; +json is just a JSON body.
        ("application/vnd.x+json", body(CE01), "application/vnd.x+json", CE01),
        ("text/plain", b"hello", "text/plain", b"hello"),
        ("application/x-www-form-urlencoded", b"a=1", "application/x-www-form-urlencoded", "a=1"),
        ("multipart/form-data; boundary=b", b"--b--", "multipart/form-data", "--b--"),
        (None, b"hello", "application/octet-stream", b"hello"),
        ("", b"hello", "application/octet-stream", b"hello"),
        ("application/json", b"", "application/json", b""),
    ],
)
def test_legacy_builds_a_transformed_event_from_the_header_type(content_type, raw, media, data):
    headers = {"Event": "user.created"}
    if content_type is not None:
        headers["Content-Type"] = content_type

    event = parse_one(headers, raw)

    assert event.type == "user.created"
    assert event.specversion == "0.1"
    assert event.source == TRANSFORMED_SOURCE
    assert event.extensions == TRANSFORMED
    assert event.datacontenttype == media
    if data is None:  # a CloudEvent-shaped body that fails validation stays a plain object
        assert event.data == json.loads(raw)
    else:
        assert event.data == data


# --- D: http.request ---------------------------------------------------------------------


def test_http_request_event_wraps_the_whole_request():
    headers = [
        ("Host", "example.com:4000"),
        ("Content-Type", "application/json"),
        ("X-Api-Key", "k1"),
        ("User-Agent", "node-fetch/1.0"),
        ("x-api-key", "k2"),
        ("Transfer-Encoding", "chunked"),
    ]
    req = request(
        headers,
        b'{"name": "Ada"}',
        method="PUT",
        path="/users/a b",
        query=b"a=1&a=2&empty=&flag&sp=x+y&pct=%C3%A9",
        host="example.com:4000",
    )

    [event] = parse_request(req)

    assert event.type == "http.request"
    assert event.source == TRANSFORMED_SOURCE
    assert event.datacontenttype == "application/json"
    assert event.extensions == TRANSFORMED
    assert encode_json(event.data) == (
        b'{"headers":{"Content-Type":"application/json","X-Api-Key":"k1, k2",'
        b'"User-Agent":"node-fetch/1.0"},'
        b'"query":{"a":["1","2"],"empty":[""],"flag":[""],"sp":["x y"],"pct":["\xc3\xa9"]},'
        b'"body":{"name":"Ada"},"host":"example.com:4000","path":"/users/a b",'
        b'"method":"PUT","params":null}'
    )
    assert event.is_http_request


@pytest.mark.parametrize(
    ("content_type", "raw", "expected"),
    [
        ("application/json", b'{"a":1}', {"a": 1}),
        # Deliberate fix: the original compared the raw header and sent this base64.
        ("application/json; charset=utf-8", b'{"a":1}', {"a": 1}),
        ("application/ld+json", b'{"a":1}', {"a": 1}),
        ("application/json", b"[1,2]", b"[1,2]"),
        ("application/json", b'"str"', b'"str"'),
        ("application/json", b"12", b"12"),
        ("application/json", b"{oops", b"{oops"),
        ("application/x-www-form-urlencoded", b"a=1&b=%20", "a=1&b=%20"),
        ("multipart/form-data; boundary=zz", b"--zz\r\n", "--zz\r\n"),
        ("text/plain", b"hello", b"hello"),
        (None, b"hello", b"hello"),
        (None, b"", b""),
    ],
)
def test_http_request_body_is_normalised(content_type, raw, expected):
    headers = {} if content_type is None else {"Content-Type": content_type}

    assert parse_one(headers, raw).data["body"] == expected


def test_http_request_bytes_body_serialises_as_padded_base64():
    event = parse_one({"Content-Type": "text/plain"}, b"hello")

    assert encode_json(event.data["body"]) == b'"aGVsbG8="'


def test_get_without_body_or_query():
    event = parse_one([("Host", "h")], method="GET", host="h")

    assert event.data == {
        "headers": {},
        "query": {},
        "body": b"",
        "host": "h",
        "path": "/",
        "method": "GET",
        "params": None,
    }


def test_http_request_data_is_callable_on_its_own():
    req = request({"Content-Type": "application/"}, b'{"a":1}', query=b"q=1")

    assert http_request_data(req)["body"] == b'{"a":1}'
    assert http_request_data(req)["query"] == {"q": ["1"]}


def test_http_request_uses_the_first_content_type_to_judge_the_body():
    req = request([("Content-Type", "application/json"), ("Content-Type", "text/plain")], b"{}")

    data = http_request_data(req)

    assert data["body"] == {}
    assert data["headers"] == {"Content-Type": "application/json, text/plain"}


def test_authorizer_request_has_no_body_and_no_params():
    req = request({"Content-Type": "application/json", "Authorization": "Bearer x"}, b'{"a":1}')

    assert authorizer_request(req) == {
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer x"},
        "query": {},
        "body": None,
        "host": "localhost:4000",
        "path": "/",
        "method": "POST",
        "params": None,
    }


# --- Content-Type errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            {"Content-Type": "application/"},
            "invalid Content-Type header 'application/': mime: expected token after slash",
        ),
        (
            {"Content-Type": "foo bar", "Event": "legacy"},
            "invalid Content-Type header 'foo bar': mime: expected slash after first token",
        ),
        (
            {"Content-Type": "text/plain; charset", **V01_HEADERS},
            "invalid Content-Type header 'text/plain; charset': mime: invalid media parameter",
        ),
    ],
)
def test_unparsable_content_type_is_a_400_naming_the_header(headers, message):
    with pytest.raises(EventParseError) as info:
        parse_request(request(headers, b"{}"))

    assert info.value.status_code == 400
    assert info.value.message == message
