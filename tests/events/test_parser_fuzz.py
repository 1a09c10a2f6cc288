"""Fuzzing parse_request with its limits: a CloudEvent list or a 4xx error, nothing else.

``test_properties.py`` covers well-formed headers over the known content types; here the
content type, header names and values are arbitrary, bodies nest deeply, and the depth
and batch limits are small enough to be reached.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventgateway.errors import EventParseError, HTTPError, PayloadTooLargeError
from eventgateway.events.codec import decode_event, encode_binary, encode_event
from eventgateway.events.http import HttpRequest, parse_request
from eventgateway.events.jsondepth import json_depth_exceeds
from eventgateway.events.model import CloudEvent
from tests.events.strategies import ATTRIBUTES, DEEP, EVENTS, HEADER_NAMES, JSON, MEDIA_TYPES


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
