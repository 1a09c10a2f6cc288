"""Properties over arbitrary requests: only EventParseError escapes, and events round-trip."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventgateway.errors import EventParseError
from eventgateway.events.codec import decode_event, encode_binary, encode_event
from eventgateway.events.http import HttpRequest, parse_request
from eventgateway.events.structured import parse_structured

CONTENT_TYPES = [
    "application/cloudevents+json",
    "application/cloudevents+json; charset=utf-8",
    "application/cloudevents-batch+json",
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.x+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
    "application/",
    "text/plain; a",
]
HEADER_NAMES = [
    "event",
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-time",
    "ce-subject",
    "ce-dataschema",
    "ce-datacontenttype",
    "ce-traceparent",
    "ce-trace-id",
    "ce-eventtype",
    "ce-cloudeventsversion",
    "ce-eventid",
    "ce-eventtime",
    "ce-schemaurl",
    "ce-eventtypeversion",
    "ce-x-color",
    "ce-x-",
    "x-api-key",
    "host",
]
HEADER_VALUES = st.one_of(
    st.sampled_from([b"1.0", b"0.1", b"/s", b"https://x/y", b"2018-01-01T00:00:00Z", b"t", b""]),
    st.binary(max_size=20),
    st.text(max_size=20).map(str.encode),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ATTRIBUTE_KEYS = st.sampled_from(
    [
        "eventType",
        "EventType",
        "cloudEventsVersion",
        "source",
        "eventID",
        "eventId",
        "eventTime",
        "schemaURL",
        "extensions",
        "contentType",
        "data",
        "specversion",
        "id",
        "type",
        "time",
        "subject",
        "dataschema",
        "datacontenttype",
        "data_base64",
        "ext",
    ]
)
GOOD_VALUES = st.sampled_from(
    ["0.1", "1.0", "/s", "urn:x", "t", "2018-01-01T00:00:00.5+01:00", "aGk=", "text/plain"]
)
EVENT_OBJECTS = st.dictionaries(ATTRIBUTE_KEYS, st.one_of(GOOD_VALUES, JSON_VALUES), max_size=10)


def body_strategy() -> st.SearchStrategy[bytes]:
    as_json = st.one_of(EVENT_OBJECTS, st.lists(EVENT_OBJECTS, max_size=3), JSON_VALUES).map(
        lambda value: json.dumps(value).encode()
    )
    return st.one_of(as_json, st.binary(max_size=64))


@st.composite
def requests(draw: st.DrawFn) -> HttpRequest:
    headers = draw(
        st.lists(st.tuples(st.sampled_from(HEADER_NAMES).map(str.encode), HEADER_VALUES))
    )
    if draw(st.booleans()):
        headers.append((b"content-type", draw(st.sampled_from(CONTENT_TYPES)).encode()))
    return HttpRequest(
        method=draw(st.sampled_from(["GET", "POST", "PUT"])),
        raw_path="/",
        path="/",
        query_string=draw(st.binary(max_size=16)),
        headers=headers,
        body=draw(body_strategy()),
        host="h",
    )


def check_round_trip(events: list[Any]) -> None:
    for event in events:
        encoded = encode_event(event)
        msgspec.json.decode(encoded)  # always valid JSON
        assert encode_event(decode_event(encoded)) == encoded
        headers, body = encode_binary(event)
        assert all(name.islower() and value.isascii() for name, value in headers)
        assert isinstance(body, bytes)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_any_request_parses_or_raises_event_parse_error_and_round_trips(req):
    try:
        events = parse_request(req)
    except EventParseError as exc:
        error: EventParseError | None = exc
    else:
        error = None
        check_round_trip(events)
    if error is not None:
        assert error.status_code == 400
        assert error.message


@settings(max_examples=400, deadline=None)
@given(EVENT_OBJECTS.map(lambda value: json.dumps(value).encode()))
def test_any_structured_object_parses_or_raises_event_parse_error(raw):
    try:
        event = parse_structured(raw)
    except EventParseError:
        return
    check_round_trip([event])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_in_every_mode_only_raise_event_parse_error(raw):
    for content_type in CONTENT_TYPES:
        for extra in ([], [(b"event", b"legacy")], [(b"ce-specversion", b"1.0")]):
            req = HttpRequest(
                "POST", "/", "/", b"", [(b"content-type", content_type.encode()), *extra], raw, "h"
            )
            try:
                check_round_trip(parse_request(req))
            except EventParseError:
                pass
