"""W3C Trace Context: request headers → the trace extension → delivery headers."""

from __future__ import annotations

import pytest

from eventgateway.events import parse_request
from eventgateway.events.http import HttpRequest
from eventgateway.events.model import CloudEvent
from eventgateway.events.tracing import trace_headers

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def request(headers: list[tuple[bytes, bytes]], body: bytes, path: str = "/acme") -> HttpRequest:
    return HttpRequest(
        method="POST",
        raw_path=path,
        path=path,
        query_string=b"",
        headers=headers,
        body=body,
        host="127.0.0.1:4000",
    )


STRUCTURED = (b"content-type", b"application/cloudevents+json")
EVENT = b'{"specversion":"1.0","id":"1","source":"/s","type":"user.created"}'


def test_the_request_traceparent_and_tracestate_become_the_events_extension() -> None:
    headers = [STRUCTURED, (b"traceparent", PARENT.encode()), (b"tracestate", b"congo=t61rcWkgMzE")]
    (event,) = parse_request(request(headers, EVENT))
    assert event.extensions == {"traceparent": PARENT, "tracestate": "congo=t61rcWkgMzE"}


def test_an_event_with_its_own_trace_keeps_it() -> None:
    body = EVENT[:-1] + f',"traceparent":"{OTHER}"}}'.encode()
    headers = [STRUCTURED, (b"traceparent", PARENT.encode()), (b"tracestate", b"a=b")]
    (event,) = parse_request(request(headers, body))
    assert event.extensions == {"traceparent": OTHER}


def test_every_event_of_a_batch_gets_the_trace() -> None:
    batch = b"[" + EVENT + b"," + EVENT.replace(b'"id":"1"', b'"id":"2"') + b"]"
    headers = [
        (b"content-type", b"application/cloudevents-batch+json"),
        (b"traceparent", PARENT.encode()),
    ]
    events = parse_request(request(headers, batch))
    assert [e.extensions for e in events] == [{"traceparent": PARENT}] * 2


def test_a_0_1_event_and_an_http_request_event_carry_it_in_extensions() -> None:
    v01 = (
        b'{"eventType":"user.created","eventID":"1","cloudEventsVersion":"0.1",'
        b'"source":"/s","contentType":"application/json","data":{}}'
    )
    (event,) = parse_request(request([STRUCTURED, (b"traceparent", PARENT.encode())], v01))
    assert event.specversion == "0.1"
    assert event.extensions == {"traceparent": PARENT}
    (wrapped,) = parse_request(request([(b"traceparent", PARENT.encode())], b"hi"))
    assert wrapped.is_http_request
    assert wrapped.extensions["traceparent"] == PARENT
    assert "eventgateway" in wrapped.extensions  # the transformation marker stays


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
    ],
)
def test_a_malformed_traceparent_header_is_ignored_not_an_error(value: str) -> None:
    headers = [STRUCTURED, (b"traceparent", value.encode()), (b"tracestate", b"a=b")]
    (event,) = parse_request(request(headers, EVENT))
    assert event.extensions == {}


@pytest.mark.parametrize(
    "value",
    [
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-0a0b-cafe",
    ],
)
def test_a_later_traceparent_version_is_passed_on_as_it_came(value: str) -> None:
    # W3C Trace Context §3.2.4: a later version is read by its first four fields.
    (event,) = parse_request(request([STRUCTURED, (b"traceparent", value.encode())], EVENT))
    assert event.extensions == {"traceparent": value}
    assert trace_headers(event) == [("traceparent", value)]


@pytest.mark.parametrize(
    "value",
    [
        PARENT + "-01",  # version 00 has exactly four fields
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  # no dash after flags
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + "a" * 201,  # too long
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x:y",  # not hex
    ],
)
def test_a_traceparent_that_breaks_the_versioning_rules_is_ignored(value: str) -> None:
    (event,) = parse_request(request([STRUCTURED, (b"traceparent", value.encode())], EVENT))
    assert event.extensions == {}


def test_a_malformed_tracestate_is_dropped_and_the_parent_kept() -> None:
    headers = [STRUCTURED, (b"traceparent", PARENT.encode()), (b"tracestate", b"x" * 513)]
    (event,) = parse_request(request(headers, EVENT))
    assert event.extensions == {"traceparent": PARENT}


def event_with(**extensions: object) -> CloudEvent:
    return CloudEvent("1.0", "1", "/s", "t", extensions=dict(extensions))


def test_trace_headers_come_from_the_extension() -> None:
    assert trace_headers(event_with()) == []
    assert trace_headers(event_with(traceparent=PARENT)) == [("traceparent", PARENT)]
    assert trace_headers(event_with(traceparent=PARENT, tracestate="a=b,c=d")) == [
        ("traceparent", PARENT),
        ("tracestate", "a=b,c=d"),
    ]


@pytest.mark.parametrize(
    "extensions",
    [
        {"traceparent": PARENT + "\r\nx-injected: 1"},
        {"traceparent": 7},
        {"traceparent": {"nested": PARENT}},
        {"tracestate": "a=b"},
    ],
)
def test_a_client_set_extension_that_is_not_a_traceparent_never_becomes_a_header(
    extensions: dict[str, object],
) -> None:
    assert trace_headers(event_with(**extensions)) == []


def test_a_bad_tracestate_attribute_is_left_out_and_the_parent_still_sent() -> None:
    event = event_with(traceparent=PARENT, tracestate="a=b\r\nx: y")
    assert trace_headers(event) == [("traceparent", PARENT)]
