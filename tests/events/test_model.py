"""CloudEvent, copies, and the transformed-event envelope (contract §2.4)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from eventgateway.events.model import (
    SYSTEM_PREFIX,
    TRANSFORMED_SOURCE,
    CloudEvent,
    format_rfc3339,
    transformed_event,
)


def test_optional_attributes_default_to_none_and_each_event_gets_its_own_extensions():
    first = CloudEvent("1.0", "id-1", "/src", "user.created")
    second = CloudEvent("1.0", "id-2", "/src", "user.created")

    first.extensions["x"] = 1

    assert (first.time, first.datacontenttype, first.dataschema) == (None, None, None)
    assert (first.subject, first.type_version, first.data) == (None, None, None)
    assert second.extensions == {}


def test_copy_owns_extensions_and_data_dict_but_shares_everything_else():
    body = {"nested": {"a": 1}}
    original = transformed_event("http.request", "application/json", {"body": body})

    clone = original.copy()
    clone.extensions["eventgateway"] = {"authorization": None}
    clone.data["params"] = {"id": "7"}

    assert clone == CloudEvent(
        "0.1",
        original.id,
        original.source,
        original.type,
        time=original.time,
        datacontenttype="application/json",
        extensions={"eventgateway": {"authorization": None}},
        data={"body": body, "params": {"id": "7"}},
    )
    assert original.extensions["eventgateway"] == {
        "transformed": "true",
        "transformation-version": "0.1",
    }
    assert original.data == {"body": body}
    assert clone.data["body"] is body


def test_copy_keeps_raw_data_as_the_same_object():
    raw = msgspec.Raw(b'{"a": 1}')
    event = CloudEvent("0.1", "1", "/s", "t", data=raw)

    assert event.copy().data is raw
    assert event.copy() == event


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        ("http.request", {"headers": {}}, True),
        ("http.request", msgspec.Raw(b"{}"), False),
        ("http.request", None, False),
        ("user.created", {"headers": {}}, False),
    ],
)
def test_is_http_request_needs_the_type_and_a_dict(event_type, data, expected):
    assert CloudEvent("0.1", "1", "/s", event_type, data=data).is_http_request is expected


def test_transformed_event_has_the_gateway_envelope():
    before = datetime.now(UTC)
    event = transformed_event("user.created", "text/plain", b"hello")

    assert event.specversion == "0.1"
    assert event.source == TRANSFORMED_SOURCE
    assert TRANSFORMED_SOURCE == "https://serverless.com/event-gateway/#transformationVersion=0.1"
    assert uuid.UUID(event.id).version == 4
    assert event.type == "user.created"
    assert event.datacontenttype == "text/plain"
    assert event.data == b"hello"
    assert event.extensions == {
        "eventgateway": {"transformed": "true", "transformation-version": "0.1"}
    }
    assert event.time is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", event.time)
    stamped = datetime.fromisoformat(event.time)
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC)


def test_transformed_events_get_distinct_ids():
    assert transformed_event("a", "b", None).id != transformed_event("a", "b", None).id


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2018, 8, 18, 10, 0, 0, 123450, UTC), "2018-08-18T10:00:00.12345Z"),
        (datetime(2018, 8, 18, 10, 0, 0, 0, UTC), "2018-08-18T10:00:00Z"),
        (datetime(2018, 8, 18, 10, 0, 0, 1, UTC), "2018-08-18T10:00:00.000001Z"),
        (
            datetime(2018, 8, 18, 10, 0, 0, 500000, timezone(timedelta(hours=2))),
            "2018-08-18T10:00:00.5+02:00",
        ),
    ],
)
def test_format_rfc3339_matches_go_rfc3339nano(moment, expected):
    assert format_rfc3339(moment) == expected


def test_system_prefix_is_the_eventgateway_namespace():
    assert SYSTEM_PREFIX == "eventgateway."


def test_events_compare_by_value_and_show_their_identity():
    event = CloudEvent("1.0", "id-1", "/src", "user.created", subject="x")

    assert event == CloudEvent("1.0", "id-1", "/src", "user.created", subject="x")
    assert event != CloudEvent("1.0", "id-1", "/src", "user.created", subject="y")
    assert event != "not an event"
    assert repr(event) == (
        "CloudEvent(specversion='1.0', id='id-1', source='/src', type='user.created')"
    )
