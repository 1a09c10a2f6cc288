"""parse_request's limits: JSON nesting depth (400) and events per batch (413)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventgateway.errors import EventParseError, PayloadTooLargeError
from eventgateway.events.http import parse_request
from eventgateway.events.structured import parse_batch
from tests.events.factories import BATCH, STRUCTURED, request

CE10 = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


# (headers, body with the data nested 10 levels below the top of the body)
MODES = [
    pytest.param(STRUCTURED, {**CE10, "data": nested(9)}, id="structured-1.0"),
    pytest.param(
        STRUCTURED,
        {"eventType": "t", "cloudEventsVersion": "0.1", "source": "/s", "eventID": "1",
         "data": nested(9)},
        id="structured-0.1",
    ),
    pytest.param(BATCH, [{**CE10, "data": nested(8)}], id="batch"),
    pytest.param(
        {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
         "content-type": "application/json"},
        nested(10),
        id="binary-1.0",
    ),
    pytest.param({"event": "t", "content-type": "application/json"}, {"a": nested(9)}, id="legacy"),
    pytest.param({"content-type": "application/json"}, {"a": nested(9)}, id="http.request"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "value"), MODES)
def test_json_nested_up_to_the_limit_parses_in_every_mode(headers: Any, value: Any) -> None:
    assert parse_request(request(headers, body(value)), max_json_depth=10)


@pytest.mark.parametrize(("headers", "value"), MODES)
def test_json_nested_beyond_the_limit_is_a_400_naming_it_in_every_mode(
    headers: Any, value: Any
) -> None:
    with pytest.raises(EventParseError) as info:
        parse_request(request(headers, body(value)), max_json_depth=9)

    assert info.value.status_code == 400
    assert info.value.message == (
        "JSON body is nested too deeply: the limit is 9 levels of arrays and objects"
    )


def test_ten_thousand_nested_arrays_are_a_400_with_the_default_limit() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000

    for headers in (STRUCTURED, BATCH, {"content-type": "application/json"}):
        with pytest.raises(EventParseError, match="the limit is 64 levels"):
            parse_request(request(headers, deep))


def test_bodies_that_are_not_json_are_not_measured() -> None:
    deep = b"[" * 10_000

    [event] = parse_request(request({"content-type": "text/plain"}, deep), max_json_depth=1)

    assert event.data["body"] == deep


def test_a_batch_at_the_limit_is_accepted() -> None:
    events = parse_request(request(BATCH, body([CE10] * 3)), max_batch_events=3)

    assert len(events) == 3


def test_a_batch_over_the_limit_is_a_413_naming_it() -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        parse_request(request(BATCH, body([CE10] * 4)), max_batch_events=3)

    assert info.value.status_code == 413
    assert info.value.message == (
        "CloudEvents batch holds 4 events; the limit is 3 events per request: "
        "send them in smaller batches"
    )


def test_the_default_batch_limit_is_1000_events() -> None:
    assert len(parse_batch(body([CE10] * 1000))) == 1000
    with pytest.raises(PayloadTooLargeError, match="holds 1001 events; the limit is 1000"):
        parse_batch(body([CE10] * 1001))
