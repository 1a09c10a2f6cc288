"""Binary mode (contract §2.2 B): CloudEvents 1.0 ce-* headers and 0.1 CE-* headers."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from eventgateway.errors import EventParseError
from eventgateway.events.codec import encode_event
from eventgateway.events.http import parse_request
from eventgateway.events.model import CloudEvent
from tests.events.factories import request

V1 = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/services/users", "ce-type": "t"}
V01 = {
    "CE-EventType": "user.created",
    "CE-CloudEventsVersion": "0.1",
    "CE-Source": "/services/users",
    "CE-EventID": "e-1",
}


def parse_one(headers: Any, body: bytes = b"") -> CloudEvent:
    [event] = parse_request(request(headers, body))
    return event


def parse_error(headers: Any, body: bytes = b"") -> str:
    with pytest.raises(EventParseError) as info:
        parse_request(request(headers, body))
    return info.value.message


# --- 1.0 ---------------------------------------------------------------------------------


def test_v1_binary_event_takes_attributes_from_headers_and_data_from_the_body():
    headers = {
        **V1,
        "ce-time": "2018-04-05T17:31:00Z",
        "ce-subject": "123",
        "ce-dataschema": "https://schema/x",
        "ce-traceparent": "00-abc",
        "Content-Type": "application/json; charset=utf-8",
    }

    event = parse_one(headers, b' {"a": 1}\n')

    assert event == CloudEvent(
        "1.0",
        "e-1",
        "/services/users",
        "t",
        time="2018-04-05T17:31:00Z",
        datacontenttype="application/json; charset=utf-8",
        dataschema="https://schema/x",
        subject="123",
        extensions={"traceparent": "00-abc"},
        data=msgspec.Raw(b'{"a": 1}'),
    )


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        ("application/json", b"[1, 2]", msgspec.Raw(b"[1, 2]")),
        ("application/vnd.api+json", b'"s"', msgspec.Raw(b'"s"')),
        ("application/json", b"{not json", b"{not json"),
        ("application/json", b'"\xff"', b'"\xff"'),
        # Only JSON media types are decoded, so only they have a depth limit.
        ("application/octet-stream", b"[" * 5000 + b"]" * 5000, b"[" * 5000 + b"]" * 5000),
        ("text/plain", b"hello", b"hello"),
        ("application/json", b"", None),
        (None, b"\x00\x01", b"\x00\x01"),
    ],
)
def test_v1_binary_data_is_raw_json_for_json_media_types_else_bytes(content_type, body, data):
    headers = dict(V1)
    if content_type is not None:
        headers["Content-Type"] = content_type

    event = parse_one(headers, body)

    assert event.data == data
    assert event.datacontenttype == content_type


def test_v1_binary_json_data_nested_deeper_than_the_limit_is_a_400_naming_it():
    headers = {**V1, "Content-Type": "application/json"}

    assert parse_error(headers, b"[" * 5000 + b"]" * 5000) == (
        "JSON body is nested too deeply: the limit is 64 levels of arrays and objects"
    )


def test_v1_header_values_are_percent_decoded():
    headers = {**V1, "ce-subject": "caf%C3%A9%20au%20lait", "ce-note": "100%25"}

    event = parse_one(headers)

    assert event.subject == "café au lait"
    assert event.extensions == {"note": "100%"}


def test_v1_repeated_header_uses_the_first_value():
    headers = [*V1.items(), ("ce-id", "second"), ("ce-ext", "a"), ("ce-ext", "b")]

    event = parse_one(headers)

    assert (event.id, event.extensions) == ("e-1", {"ext": "a"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"ce-specversion": "0.3"},
            "header 'ce-specversion' must be '1.0', got '0.3': supported versions are 1.0 "
            "(ce-specversion) and 0.1 (CE-CloudEventsVersion)",
        ),
        (
            {"ce-specversion": ""},
            "header 'ce-specversion' must be '1.0', got '': supported versions are 1.0 "
            "(ce-specversion) and 0.1 (CE-CloudEventsVersion)",
        ),
        (
            {"ce-id": None},
            "CloudEvent attribute 'id' (header 'ce-id') is required and must not be empty",
        ),
        (
            {"ce-source": ""},
            "CloudEvent attribute 'source' (header 'ce-source') is required and must not be empty",
        ),
        (
            {"ce-type": None},
            "CloudEvent attribute 'type' (header 'ce-type') is required and must not be empty",
        ),
        (
            {"ce-source": "my source"},
            "CloudEvent attribute 'source' (header 'ce-source') must be a URI-reference, "
            "got 'my source'",
        ),
        (
            {"ce-time": "now"},
            "CloudEvent attribute 'time' (header 'ce-time') must be an RFC 3339 timestamp, "
            "got 'now'",
        ),
        (
            {"ce-dataschema": "x"},
            "CloudEvent attribute 'dataschema' (header 'ce-dataschema') must be an absolute "
            "URI, got 'x'",
        ),
        (
            {"ce-subject": ""},
            "CloudEvent attribute 'subject' (header 'ce-subject') must not be empty",
        ),
        (
            {"ce-trace-id": "x"},
            "header 'ce-trace-id' does not name a valid CloudEvent attribute: attribute names "
            "are lower-case letters a-z and digits 0-9",
        ),
        (
            {"ce-datacontenttype": "text/plain"},
            "header 'ce-datacontenttype' is not allowed: in binary mode datacontenttype travels "
            "in the Content-Type header",
        ),
        (
            {"ce-data": "x"},
            "header 'ce-data' is not allowed: in binary mode data travels in the request body",
        ),
    ],
)
def test_v1_binary_errors_name_the_header(change, message):
    headers = {**V1, **change}
    headers = {name: value for name, value in headers.items() if value is not None}

    assert parse_error(headers) == message


# --- 0.1 ---------------------------------------------------------------------------------


def test_v01_binary_event_from_ce_headers():
    headers = {
        **V01,
        "CE-EventTypeVersion": "2.0",
        "CE-SchemaURL": "https://schema/x",
        "CE-EventTime": "2018-04-05T17:31:00.000+00:00",
        "Content-Type": "text/plain; charset=utf-8",
        "CE-X-MyExtension": "ding",
    }

    event = parse_one(headers, b"hello")

    assert encode_event(event) == (
        b'{"eventType":"user.created","eventTypeVersion":"2.0","cloudEventsVersion":"0.1",'
        b'"source":"/services/users","eventID":"e-1","eventTime":"2018-04-05T17:31:00Z",'
        b'"schemaURL":"https://schema/x","extensions":{"myextension":"ding"},'
        b'"contentType":"text/plain; charset=utf-8","data":"aGVsbG8="}'
    )


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("CE-X-MyExtension", "myextension"),
        ("CE-X-Trace-Id", "trace-Id"),
        ("ce-x-trace-id", "trace-Id"),
        # Fixed: the original trimmed the characters C, e, X and '-' ("olor", "yz").
        ("CE-X-Color", "color"),
        ("CE-X-Xyz", "xyz"),
        ("CE-X-eXtra", "extra"),
        ("CE-X-1st", "1st"),
    ],
)
def test_v01_extension_names_lose_exactly_the_ce_x_prefix(header, name):
    assert parse_one({**V01, header: "v"}).extensions == {name: "v"}


def test_v01_repeated_extension_headers_are_joined_like_go():
    headers = [*V01.items(), ("CE-X-Tag", "a"), ("CE-X-Tag", "b"), ("CE-X-", "ignored")]

    assert parse_one(headers).extensions == {"tag": "a, b"}


def test_v01_binary_without_extensions_has_none():
    assert parse_one(V01).extensions == {}


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        ("application/json", b'{"a":1}', {"a": 1}),
        # Deliberate fix: parameters are stripped before the JSON check.
        ("application/json; charset=utf-8", b'{"a":1}', {"a": 1}),
        ("application/cloudevents-ish+json", b'{"a":1}', {"a": 1}),
        ("application/json", b"[1,2]", b"[1,2]"),
        ("application/json", b"3", b"3"),
        ("application/json", b"{bad", b"{bad"),
        ("application/x-www-form-urlencoded", b"a=1&b=2", "a=1&b=2"),
        ("multipart/form-data; boundary=x", b"--x--", "--x--"),
        ("text/plain", b"hello", b"hello"),
        (None, b"hello", b"hello"),
        ("application/json", b"", b""),
    ],
)
def test_v01_binary_body_is_normalised_by_media_type(content_type, body, data):
    headers = dict(V01)
    if content_type is not None:
        headers["Content-Type"] = content_type

    event = parse_one(headers, body)

    assert event.data == data
    assert event.datacontenttype == content_type


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"CE-Source": "my source"},
            "CloudEvent doesn't validate: Key: 'Event.Source' Error:Field validation for "
            "'Source' failed on the 'uri' tag",
        ),
        (
            {"CE-EventTime": "2018-01-01"},
            "header 'CE-EventTime' must be an RFC 3339 timestamp, got '2018-01-01'",
        ),
    ],
)
def test_v01_binary_errors(change, message):
    assert parse_error({**V01, **change}) == message


def test_v01_empty_optional_headers_are_ignored():
    headers = {**V01, "CE-EventTime": "", "CE-SchemaURL": "", "CE-EventTypeVersion": ""}

    event = parse_one(headers)

    assert (event.time, event.dataschema, event.type_version) == (None, None, None)


@pytest.mark.parametrize("missing", list(V01))
def test_v01_binary_needs_all_four_headers_non_empty(missing):
    absent = {name: value for name, value in V01.items() if name != missing}
    emptied = {**V01, missing: ""}

    assert parse_one(absent).type == "http.request"
    assert parse_one(emptied).type == "http.request"


def test_header_values_that_are_not_utf8_become_replacement_characters():
    event = parse_one({**V01, "CE-EventType": b"caf\xe9"})

    assert event.type == "caf\ufffd"


def test_whitespace_after_a_header_value_is_not_part_of_it():
    headers = {**V1, "ce-specversion": "1.0 ", "ce-type": "user.created \t", "ce-color": "red "}

    event = parse_one(headers, b"")

    assert (event.type, event.extensions) == ("user.created", {"color": "red"})


def test_whitespace_after_a_0_1_header_value_is_not_part_of_it():
    event = parse_one({**V01, "CE-EventType": "user.created  ", "CE-Source": "/users\t"})

    assert (event.type, event.source) == ("user.created", "/users")
