"""Fuzzing parse_request with its limits: a CloudEvent list or a 4xx error, nothing else.

``test_properties.py`` covers well-formed headers over the known content types; here the
content type, header names and values are arbitrary, bodies nest deeply, and the depth
and batch limits are small enough to be reached.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventgateway.errors import EventParseError, HTTPError, PayloadTooLargeError
from eventgateway.events.codec import decode_event, encode_binary, encode_event
from eventgateway.events.http import HttpRequest, parse_request
from eventgateway.events.jsondepth import json_depth_exceeds
from eventgateway.events.model import CloudEvent
from eventgateway.events.structured_v1 import parse_v1_exact, parse_v1_members
from tests.events.strategies import (
    ATTRIBUTES,
    DEEP,
    EVENTS,
    HEADER_NAMES,
    JSON,
    MEDIA_TYPES,
    SCALARS,
)


def bodies() -> st.SearchStrategy[bytes]:
    as_json = st.one_of(EVENTS, st.lists(EVENTS, max_size=4), JSON, DEEP).map(json.dumps)
    return st.one_of(as_json.map(str.encode), st.binary(max_size=80))


@st.composite
def requests(draw: st.DrawFn) -> HttpRequest:
    headers = draw(st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=24)), max_size=8))
    if draw(st.booleans()):
        headers.append((b"content-type", draw(MEDIA_TYPES).encode("utf-8", "surrogateescape")))
    return HttpRequest(
        method=draw(st.sampled_from(["GET", "POST", "PUT", "PATCH"])),
        raw_path="/acme/",
        path="/acme/",
        query_string=draw(st.binary(max_size=12)),
        headers=headers,
        body=draw(bodies()),
        host=draw(st.text(max_size=12)),
    )


def check_event(event: CloudEvent) -> None:
    assert isinstance(event.type, str)
    encoded = encode_event(event)
    assert encode_event(decode_event(encoded)) == encoded
    encode_binary(event)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    req=requests(),
    max_json_depth=st.integers(min_value=1, max_value=8),
    max_batch_events=st.integers(min_value=1, max_value=3),
)
def test_any_request_is_events_or_a_4xx_error(
    req: HttpRequest, max_json_depth: int, max_batch_events: int
) -> None:
    error: HTTPError | None = None
    events: list[CloudEvent] = []
    try:
        events = parse_request(
            req, max_json_depth=max_json_depth, max_batch_events=max_batch_events
        )
    except HTTPError as exc:
        error = exc
    if error is not None:
        assert isinstance(error, EventParseError | PayloadTooLargeError), repr(error)
        assert error.status_code in (400, 413)
        assert error.message
    assert len(events) <= max_batch_events or len(events) == 1
    for event in events:
        check_event(event)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(JSON, DEEP), limit=st.integers(min_value=1, max_value=8))
def test_a_json_body_parses_only_within_the_depth_limit(value: Any, limit: int) -> None:
    body = json.dumps({**ATTRIBUTES, "data": value}).encode()
    req = HttpRequest(
        "POST", "/", "/", b"", [(b"content-type", b"application/cloudevents+json")], body, "h"
    )

    message = ""
    try:
        parse_request(req, max_json_depth=limit)
    except EventParseError as exc:
        message = exc.message
    assert json_depth_exceeds(body, limit) == message.startswith("JSON body is nested")


V1_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.sampled_from(["", "1.0", "0.1", "/s", "x:y", "a b", "http://e.com/s", "%zz"]),
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "application/json"]),
    st.text(max_size=6),
)
V1_OBJECTS = st.fixed_dictionaries(
    {"specversion": st.just("1.0") | V1_VALUES},
    optional={
        **{
            name: st.just(ATTRIBUTES.get(name, "x")) | V1_VALUES
            for name in (
                "id",
                "source",
                "type",
                "time",
                "subject",
                "dataschema",
                "datacontenttype",
            )
        },
        "data": JSON,
        "data_base64": st.sampled_from(["aGk=", "!"]),
        "ext1": SCALARS,
    },
)


def _general(body: bytes) -> CloudEvent | str:
    members = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    try:
        return parse_v1_members(members)
    except EventParseError as exc:
        return exc.message


@settings(max_examples=800, deadline=None)
@given(obj=V1_OBJECTS)
def test_the_1_0_fast_path_accepts_exactly_what_the_general_path_accepts(
    obj: dict[str, Any],
) -> None:
    try:
        body = json.dumps(obj, allow_nan=False).encode()
    except ValueError:
        return  # infinity: not JSON
    fast = parse_v1_exact(body)
    general = _general(body)
    if fast is None:
        return  # the general path decides, alone
    assert isinstance(general, CloudEvent), general
    assert encode_event(fast) == encode_event(general)
    assert fast.extensions == general.extensions == {}
