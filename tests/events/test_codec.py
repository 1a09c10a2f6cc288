"""Delivery encoding (contract §2.6), binary mode out, and the queue's round trip."""

from __future__ import annotations

import msgspec
import pytest

from eventgateway.errors import EventParseError, ValidationError
from eventgateway.events.codec import (
    decode_event,
    decode_json,
    encode_binary,
    encode_event,
    encode_json,
)
from eventgateway.events.model import CloudEvent, transformed_event

FULL01 = CloudEvent(
    "0.1",
    "e-1",
    "/services/users",
    "user.created",
    time="2018-04-05T17:31:00.5Z",
    datacontenttype="application/json",
    dataschema="https://schema/x",
    type_version="1.2",
    extensions={"trace": {"id": 7}},
    data=msgspec.Raw(b'{"b": 1.50,  "a": [1, 2]}'),
)
FULL10 = CloudEvent(
    "1.0",
    "e-1",
    "urn:users",
    "user.created",
    time="2018-04-05T17:31:00.50+02:00",
    datacontenttype="application/json",
    dataschema="https://s/x",
    subject="123",
    extensions={"traceparent": "00-ab", "count": 3, "flag": False},
    data=msgspec.Raw(b'{"k": "v"}'),
)


def test_v01_full_event_uses_go_key_order_and_splices_raw_data():
    assert encode_event(FULL01) == (
        b'{"eventType":"user.created","eventTypeVersion":"1.2","cloudEventsVersion":"0.1",'
        b'"source":"/services/users","eventID":"e-1","eventTime":"2018-04-05T17:31:00.5Z",'
        b'"schemaURL":"https://schema/x","extensions":{"trace":{"id":7}},'
        b'"contentType":"application/json","data":{"b": 1.50,  "a": [1, 2]}}'
    )


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (None, b"null"),
        (b"hello", b'"aGVsbG8="'),
        (b"", b'""'),
        (bytearray(b"hi"), b'"aGk="'),
        ("a=1&b=2", b'"a=1&b=2"'),
        ({"z": 1, "a": [None, True]}, b'{"z":1,"a":[null,true]}'),
        (msgspec.Raw(b"  [1,\n 2]"), b"  [1,\n 2]"),
    ],
)
def test_v01_minimal_event_always_has_data(data, encoded):
    event = CloudEvent(
        "0.1", "e-1", "/s", "t", type_version="", extensions={}, datacontenttype="", data=data
    )

    assert encode_event(event) == (
        b'{"eventType":"t","cloudEventsVersion":"0.1","source":"/s","eventID":"e-1","data":'
        + encoded
        + b"}"
    )


def test_v1_full_event_is_structured_json_with_extensions_at_top_level():
    assert encode_event(FULL10) == (
        b'{"specversion":"1.0","id":"e-1","source":"urn:users","type":"user.created",'
        b'"datacontenttype":"application/json","dataschema":"https://s/x","subject":"123",'
        b'"time":"2018-04-05T17:31:00.50+02:00","traceparent":"00-ab","count":3,'
        b'"flag":false,"data":{"k": "v"}}'
    )


@pytest.mark.parametrize(
    ("data", "tail"),
    [
        (None, b""),
        (b"\x00\xff", b',"data_base64":"AP8="'),
        (msgspec.Raw(b"null"), b',"data":null'),
        ("text", b',"data":"text"'),
    ],
)
def test_v1_data_or_data_base64(data, tail):
    event = CloudEvent("1.0", "e-1", "/s", "t", data=data)

    assert encode_event(event) == (
        b'{"specversion":"1.0","id":"e-1","source":"/s","type":"t"' + tail + b"}"
    )


def test_v1_extensions_named_like_attributes_are_not_written_twice():
    event = CloudEvent("1.0", "e-1", "/s", "t", extensions={"id": "x", "data": 1, "ok": 1})

    assert encode_event(event) == (
        b'{"specversion":"1.0","id":"e-1","source":"/s","type":"t","ok":1}'
    )


ROUND_TRIP = [
    FULL01,
    FULL10,
    transformed_event("http.request", "application/json", {"headers": {}, "body": b"x"}),
    transformed_event("legacy", "text/plain", b"\x00\x01"),
    transformed_event("legacy", "application/json", b""),
    CloudEvent("0.1", "e", "/s", "t", data=msgspec.Raw(b'"aGVsbG8="')),
    CloudEvent("0.1", "e", "/s", "t", data=1.5),
    CloudEvent("1.0", "e", "/s", "t", data=b"bin"),
    CloudEvent("1.0", "e", "/s", "t", data=b""),
    CloudEvent("1.0", "e", "/s", "t", data=msgspec.Raw(b"null")),
    CloudEvent("1.0", "e", "/s", "t", data={"x": [1, "é"]}),
    CloudEvent("1.0", "e", "/s", "t", extensions={"extensions": "x", "eventtime": 1}),
    CloudEvent("1.0", "e", "/s", "t", extensions={"eventgateway": {"authorization": None}}),
]


@pytest.mark.parametrize("event", ROUND_TRIP, ids=lambda e: f"{e.specversion}-{e.type}")
def test_decode_event_round_trips_the_delivery_encoding(event):
    encoded = encode_event(event)

    decoded = decode_event(encoded)

    assert encode_event(decoded) == encoded
    for name in ("specversion", "id", "source", "type", "time", "datacontenttype"):
        assert getattr(decoded, name) == getattr(event, name)
    for name in ("dataschema", "subject", "type_version", "extensions"):
        assert getattr(decoded, name) == getattr(event, name)


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (FULL01, msgspec.Raw(b'{"b": 1.50,  "a": [1, 2]}')),
        (CloudEvent("0.1", "e", "/s", "t"), None),
        (CloudEvent("0.1", "e", "/s", "t", data=msgspec.Raw(b"null")), None),
        (CloudEvent("0.1", "e", "/s", "t", data=b"hi"), msgspec.Raw(b'"aGk="')),
        (CloudEvent("1.0", "e", "/s", "t", data=b"hi"), b"hi"),
        (CloudEvent("1.0", "e", "/s", "t"), None),
        (CloudEvent("1.0", "e", "/s", "t", data={"a": 1}), msgspec.Raw(b'{"a":1}')),
    ],
)
def test_decoded_data_is_none_bytes_or_raw(event, data):
    assert decode_event(encode_event(event)).data == data


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"{", b'{"eventType": 5}', b'{"specversion":"1.0"}', b'"\xff"', b"[" * 5000],
)
def test_decode_event_refuses_what_encode_event_cannot_have_written(raw):
    with pytest.raises(EventParseError) as info:
        decode_event(raw)
    assert info.value.message.startswith("stored event is not valid: ")


# --- binary mode out ---------------------------------------------------------------------


def test_encode_binary_v1_event():
    assert encode_binary(FULL10) == (
        [
            ("ce-specversion", "1.0"),
            ("ce-id", "e-1"),
            ("ce-source", "urn:users"),
            ("ce-type", "user.created"),
            ("ce-time", "2018-04-05T17:31:00.50+02:00"),
            ("ce-subject", "123"),
            ("ce-dataschema", "https://s/x"),
            ("ce-traceparent", "00-ab"),
            ("ce-count", "3"),
            ("ce-flag", "false"),
            ("content-type", "application/json"),
        ],
        b'{"k": "v"}',
    )


def test_encode_binary_maps_a_v01_event_onto_1_0_headers():
    event = CloudEvent(
        "0.1",
        "e-1",
        "/s",
        "user.created",
        time="2018-01-01T00:00:00Z",
        type_version="2",
        dataschema="https://s",
        datacontenttype="text/plain",
        extensions={
            "eventgateway": {"transformed": "true"},
            "trace-Id": "a b",
            "bad name": "x",
            "none": None,
        },
        data=b"hello",
    )

    assert encode_binary(event) == (
        [
            ("ce-specversion", "1.0"),
            ("ce-id", "e-1"),
            ("ce-source", "/s"),
            ("ce-type", "user.created"),
            ("ce-time", "2018-01-01T00:00:00Z"),
            ("ce-dataschema", "https://s"),
            ("ce-eventtypeversion", "2"),
            ("ce-eventgateway", "{%22transformed%22:%22true%22}"),
            ("ce-trace-id", "a%20b"),
            ("content-type", "text/plain"),
        ],
        b"hello",
    )


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("plain", "plain"),
        ("café au lait", "caf%C3%A9%20au%20lait"),
        ("100%", "100%25"),
        ('say "hi"', "say%20%22hi%22"),
        ("tab\there", "tab%09here"),
        (1.5, "1.5"),
        (True, "true"),
    ],
)
def test_encode_binary_percent_encodes_header_values(value, header):
    event = CloudEvent("1.0", "e", "/s", "t", extensions={"x": value})

    headers, _ = encode_binary(event)

    assert headers[-1] == ("ce-x", header)


@pytest.mark.parametrize(
    ("content_type", "data", "expected_type", "body"),
    [
        (None, None, None, b""),
        (None, b"\x00", None, b"\x00"),
        (None, {"a": 1}, "application/json", b'{"a":1}'),
        (None, msgspec.Raw(b"[1]"), "application/json", b"[1]"),
        ("application/json", msgspec.Raw(b'"s"'), "application/json", b'"s"'),
        ("text/xml", msgspec.Raw(b'"<x>\\u00e9</x>"'), "text/xml", "<x>é</x>".encode()),
        ("text/xml", msgspec.Raw(b"[1]"), "text/xml", b"[1]"),
        ("text/plain", "a=1", "text/plain", b"a=1"),
        ("application/json", "a=1", "application/json", b'"a=1"'),
        ("not a type/", "x", "not a type/", b"x"),
    ],
)
def test_encode_binary_body_and_content_type(content_type, data, expected_type, body):
    event = CloudEvent("1.0", "e", "/s", "t", datacontenttype=content_type, data=data)

    headers, encoded = encode_binary(event)

    assert dict(headers).get("content-type") == expected_type
    assert encoded == body


# --- plain JSON helpers ------------------------------------------------------------------


def test_encode_json_keeps_order_base64s_bytes_and_adds_no_newline():
    assert encode_json({"b": b"hi", "a": [1, None], "r": msgspec.Raw(b"{}")}) == (
        b'{"b":"aGk=","a":[1,null],"r":{}}'
    )


def test_decode_json_gives_plain_values():
    assert decode_json(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b'"\xff"', b"[" * 5000 + b"]" * 5000])
def test_decode_json_errors_are_validation_errors(raw):
    with pytest.raises(ValidationError) as info:
        decode_json(raw)
    assert info.value.message.startswith("invalid JSON: ")


def test_decode_event_also_reads_1_0_json_in_another_member_order():
    raw = b'{"type":"t","id":"e","extensions":"x","specversion":"1.0","source":"/s","data":1}'

    assert decode_event(raw) == CloudEvent(
        "1.0", "e", "/s", "t", extensions={"extensions": "x"}, data=msgspec.Raw(b"1")
    )


def test_encode_binary_leaves_out_an_empty_extension_name():
    event = CloudEvent("0.1", "e", "/s", "t", extensions={"": "x", "ok": "y"})

    headers, _ = encode_binary(event)

    assert headers[4:] == [("ce-ok", "y")]
