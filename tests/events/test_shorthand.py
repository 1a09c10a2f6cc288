"""The emit shorthand ``{"event", "data"}`` of the original Node SDK's README (structured only)."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from eventgateway.errors import EventParseError
from eventgateway.events.codec import encode_event
from eventgateway.events.http import parse_request
from eventgateway.events.model import TRANSFORMED_SOURCE, CloudEvent
from eventgateway.events.structured import parse_structured
from eventgateway.events.validate import valid_rfc3339
from eventgateway.sdk._emit import DEFAULT_SOURCE
from tests.events.factories import BATCH, STRUCTURED, request
from tests.support.inprocess import in_process_gateway
from tests.support.receiver import Receiver

# What the Node SDK's emit({event: 'user.created', data: user}) posts: JSON.stringify(event).
NODE_BODY = b'{"event":"user.created","data":{"username":"ada","email":"ada@example.com"}}'


def line(field: str) -> str:
    """The Go validator's line for a failing 0.1 attribute (contract §2.2)."""
    tag = "uri" if field == "Source" else "required"
    return f"Key: 'Event.{field}' Error:Field validation for '{field}' failed on the '{tag}' tag"


# Every 0.1 check fails: what the original answered to any object without eventType.
ALL_FAIL = "CloudEvent doesn't validate: " + "\n".join(
    map(line, ("EventType", "CloudEventsVersion", "Source", "EventID"))
)


def emit(raw: bytes) -> CloudEvent:
    [event] = parse_request(request(STRUCTURED, raw))
    return event


def emit_error(raw: bytes) -> str:
    with pytest.raises(EventParseError) as info:
        parse_request(request(STRUCTURED, raw))
    assert info.value.status_code == 400
    return info.value.message


def test_node_sdk_emit_body_becomes_a_cloudevents_1_0_event():
    event = emit(NODE_BODY)

    assert event.specversion == "1.0"
    assert event.type == "user.created"
    assert uuid.UUID(event.id).version == 4
    assert event.source == DEFAULT_SOURCE == "/eventgateway/sdk"
    assert event.time is not None
    assert valid_rfc3339(event.time)
    assert event.datacontenttype == "application/json"
    assert event.data == msgspec.Raw(b'{"username":"ada","email":"ada@example.com"}')
    assert (event.dataschema, event.subject, event.type_version) == (None, None, None)
    assert event.extensions == {}


def test_every_emit_gets_its_own_id():
    assert len({emit(NODE_BODY).id for _ in range(20)}) == 20


def test_data_is_kept_byte_exact_and_delivered_as_sent():
    raw = b'{ "data" : {"b": 1.50,  "a": [1, 2e3, "\\u00e9"]} , "event" : "user.created" }'

    event = emit(raw)

    assert bytes(event.data) == b'{"b": 1.50,  "a": [1, 2e3, "\\u00e9"]}'
    delivered = encode_event(event)
    assert b'"data":{"b": 1.50,  "a": [1, 2e3, "\\u00e9"]}' in delivered
    assert json.loads(delivered)["type"] == "user.created"


@pytest.mark.parametrize(
    ("members", "content_type", "data"),
    [
        ({"event": "user.created"}, None, None),
        ({"event": "user.created", "data": None}, "application/json", b"null"),
        ({"event": "user.created", "data": "hi"}, "application/json", b'"hi"'),
        ({"event": "user.created", "data": 5, "dataType": None}, "application/json", b"5"),
        ({"event": "user.created", "data": "hi", "dataType": "text/plain"}, "text/plain", b'"hi"'),
        ({"event": "user.created", "dataType": "text/plain"}, "text/plain", None),
        (
            {"event": "user.created", "data": [1], "dataType": "application/json; charset=utf-8"},
            "application/json; charset=utf-8",
            b"[1]",
        ),
    ],
)
def test_data_and_data_type_are_optional(
    members: dict[str, object], content_type: str | None, data: bytes | None
):
    event = emit(json.dumps(members, separators=(",", ":")).encode())

    assert event.datacontenttype == content_type
    assert (None if event.data is None else bytes(event.data)) == data


def test_any_non_empty_event_type_is_taken_as_sent():
    event = emit('{"event":"  Ünïcode type/with spaces ","data":1}'.encode())
    assert event.type == "  Ünïcode type/with spaces "


@pytest.mark.parametrize(
    "obj",
    [
        {"event": 5},
        {"event": ""},
        {"event": None},
        {"event": ["user.created"]},
        {"event": {"type": "user.created"}},
        {"Event": "user.created", "data": 1},
        {"event": "user.created", "data": 1, "path": "/acme"},
        {"event": "user.created", "dataType": 5},
        {"event": "user.created", "dataType": ""},
        {"event": "user.created", "dataType": "not a media type"},
        {"event": "user.created", "DataType": "text/plain"},
        {},
    ],
)
def test_near_misses_keep_the_originals_validation_message(obj: dict[str, object]):
    assert emit_error(json.dumps(obj).encode()) == ALL_FAIL


def test_an_out_of_range_number_as_event_keeps_the_old_message():
    assert emit_error(b'{"event": 1e400, "data": 1}') == ALL_FAIL


@pytest.mark.parametrize(
    ("extra", "failing"),
    [
        ({"eventType": "y"}, ("CloudEventsVersion", "Source", "EventID")),
        ({"EVENTTYPE": "y"}, ("CloudEventsVersion", "Source", "EventID")),
        ({"eventID": "e-1"}, ("EventType", "CloudEventsVersion", "Source")),
        ({"eventid": "e-1"}, ("EventType", "CloudEventsVersion", "Source")),
        ({"cloudEventsVersion": "0.1"}, ("EventType", "Source", "EventID")),
        ({"CloudEventsVersion": "0.1"}, ("EventType", "Source", "EventID")),
        ({"source": "/s"}, ("EventType", "CloudEventsVersion", "EventID")),
        ({"contentType": "text/plain"}, ("EventType", "CloudEventsVersion", "Source", "EventID")),
        ({"extensions": {}}, ("EventType", "CloudEventsVersion", "Source", "EventID")),
    ],
)
def test_an_object_with_a_0_1_attribute_is_no_shorthand(
    extra: dict[str, str], failing: tuple[str, ...]
):
    raw = json.dumps({"event": "x", "data": 1, **extra}).encode()

    assert emit_error(raw) == "CloudEvent doesn't validate: " + "\n".join(map(line, failing))


def test_an_object_with_specversion_is_parsed_as_1_0():
    raw = b'{"specversion":"1.0","event":"x","data":1}'
    assert emit_error(raw) == "CloudEvent attribute 'id' is required"


def test_a_valid_0_1_event_with_an_event_member_stays_0_1():
    raw = json.dumps(
        {
            "event": "ignored",
            "eventType": "user.created",
            "cloudEventsVersion": "0.1",
            "source": "/s",
            "eventID": "e-1",
        }
    ).encode()
    event = emit(raw)
    assert (event.specversion, event.type, event.id) == ("0.1", "user.created", "e-1")


def test_a_lone_surrogate_in_the_shorthand_reads_as_u_fffd_like_any_event():
    event = emit(b'{"event":"user.\\ud800","data":"\\udc00"}')
    assert event.type == "user.\ufffd"
    assert msgspec.json.decode(event.data) == "\ufffd"


def test_the_shorthand_is_structured_mode_only():
    # The legacy Event header with a JSON body: a body of this shape is the event's data.
    legacy = request(
        {"Event": "page.viewed", "Content-Type": "application/json"},
        b'{"event":"click","data":{"x":1}}',
    )
    [event] = parse_request(legacy)
    assert (event.type, event.source) == ("page.viewed", TRANSFORMED_SOURCE)
    assert event.data == {"event": "click", "data": {"x": 1}}
    # A batch holds CloudEvents 1.0 only.
    with pytest.raises(EventParseError, match=r"event \[0\]: .*'specversion' is required"):
        parse_request(request(BATCH, b'[{"event":"click"}]'))
    # Called directly, without the HTTP binding, the parser is the original's.
    with pytest.raises(EventParseError, match="doesn't validate"):
        parse_structured(NODE_BODY)


async def test_the_walkthrough_emit_reaches_the_function_at_the_space_path(receiver: Receiver):
    async with in_process_gateway() as gw:
        await gw.http_function("addUserToCRM", receiver.url("/crm"))
        await gw.event_type("user.created")
        await gw.subscribe(
            type="async", eventType="user.created", functionId="addUserToCRM", path="/acme/"
        )
        # new SDK({url: 'http://localhost:4000/acme', space: 'acme'}).emit({event, data})
        response = await gw.events.post("/acme/", content=NODE_BODY, headers=STRUCTURED)
        assert response.status_code == 202, response.text
        [call] = await receiver.wait_for(1, "/crm")
        reserved = await gw.events.post(
            "/acme/", content=b'{"event":"eventgateway.x"}', headers=STRUCTURED
        )
    delivered = call.json()
    assert delivered["specversion"] == "1.0"
    assert delivered["type"] == "user.created"
    assert delivered["source"] == "/eventgateway/sdk"
    assert delivered["data"] == {"username": "ada", "email": "ada@example.com"}
    assert reserved.status_code == 400
    assert "reserved" in reserved.text
