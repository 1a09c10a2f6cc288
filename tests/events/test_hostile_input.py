"""Client input that must neither crash parsing nor pin memory.

JSON numbers Python cannot hold (``1e400``, integers of more than 4,300 digits) are a 400
naming the attribute; batch media types are told apart by their parsed (case-folded) type;
long header names and Content-Types are not kept in the parsers' caches.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from eventgateway.errors import EventParseError
from eventgateway.events.http import parse_request
from eventgateway.events.model import HTTP_REQUEST_TYPE
from eventgateway.events.structured import Batch
from tests.events.factories import BATCH, STRUCTURED, request

V1 = b'"specversion":"1.0","id":"e-1","source":"/s","type":"t"'
V01 = b'"eventType":"t","cloudEventsVersion":"0.1","source":"/s","eventID":"e-1"'
HUGE_INT = b"1" * 4301
OUT_OF_RANGE = "holds a number out of range"


@pytest.mark.parametrize(
    ("headers", "raw", "where"),
    [
        (STRUCTURED, b"{" + V1 + b',"ext":1e400}', "CloudEvent attribute 'ext'"),
        (STRUCTURED, b"{" + V1 + b',"ext":-1e400}', "CloudEvent attribute 'ext'"),
        (STRUCTURED, b"{" + V1 + b',"ext":' + HUGE_INT + b"}", "CloudEvent attribute 'ext'"),
        (
            STRUCTURED,
            b'{"specversion":"1.0","id":1e400,"source":"/s","type":"t"}',
            "CloudEvent attribute 'id'",
        ),
        (STRUCTURED, b"{" + V1 + b',"data_base64":1e400}', "CloudEvent attribute 'data_base64'"),
        (BATCH, b"[{" + V1 + b"},{" + V1 + b',"ext":1e400}]', "event [1]: CloudEvent attribute"),
        (
            STRUCTURED,
            b"{" + V01 + b',"extensions":{"a":[1e400]}}',
            "CloudEvent attribute 'extensions'",
        ),
        (  # a differently-cased key takes the member-by-member path
            STRUCTURED,
            b'{"EventType":"t","cloudEventsVersion":"0.1","source":"/s","eventID":"e-1",'
            b'"extensions":{"a":1e400}}',
            "CloudEvent attribute 'extensions'",
        ),
        (
            STRUCTURED,
            b'{"eventType":1e400,"cloudEventsVersion":"0.1","source":"/s","eventID":"e-1"}',
            "CloudEvent attribute 'eventType'",
        ),
    ],
)
def test_number_out_of_range_is_a_400_naming_the_attribute(headers, raw, where):
    with pytest.raises(EventParseError) as info:
        parse_request(request(headers, raw))

    assert info.value.status_code == 400
    assert info.value.message.startswith(where)
    assert OUT_OF_RANGE in info.value.message


def test_number_out_of_range_in_data_is_kept_as_sent():
    # data is never decoded: the function gets the JSON text, as with any other data
    [event] = parse_request(request(STRUCTURED, b"{" + V1 + b',"data":{"x":1e400}}'))

    assert bytes(event.data) == b'{"x":1e400}'


def test_legacy_json_body_with_a_number_out_of_range_is_wrapped_like_any_other():
    raw = b"{" + V01 + b',"extensions":{"a":1e400}}'

    [event] = parse_request(request({"Content-Type": "application/json", "Event": "e.x"}, raw))

    assert (event.type, event.data) == ("e.x", raw)  # not an object Python can hold: bytes


@pytest.mark.parametrize(
    "content_type",
    [
        "application/cloudevents-batch+json",
        "Application/CloudEvents-Batch+JSON",
        "APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8",
    ],
)
def test_batch_is_recognised_whatever_the_case_of_its_media_type(content_type):
    events = parse_request(request({"Content-Type": content_type}, b"[{" + V1 + b"}]"))

    assert isinstance(events, Batch)
    assert [event.id for event in events] == ["e-1"]


def test_a_single_event_is_not_a_batch():
    events = parse_request(request(STRUCTURED, b"{" + V1 + b"}"))

    assert not isinstance(events, Batch)


def test_long_header_names_and_content_types_are_not_cached():
    # Each request's name and Content-Type are ~60 KB; were they cached, 16 requests
    # would leave ~3 MB behind.
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(16):
            name = f"x-{i:04d}-".encode() + b"a" * 60_000
            content_type = f"text/plain; p={i}" + "a" * 60_000
            [event] = parse_request(request([(name.decode(), "v"), ("Content-Type", content_type)]))
            assert event.type == HTTP_REQUEST_TYPE
        del event
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert after - before < 1_000_000
