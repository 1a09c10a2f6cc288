"""Structured mode: a CloudEvent as a JSON object (0.1 or 1.0), and 1.0 batches.

``data`` is never decoded: it is kept as the exact JSON text the client sent
(:class:`msgspec.Raw`). The common case, a 0.1 object whose members are all spelled as in
the spec, is decoded in one pass into a typed struct. Everything else is decoded into
``dict[str, msgspec.Raw]`` and its attribute values one by one, which is also what words
the errors. An object with a ``specversion`` member is a CloudEvents 1.0 event; any other
object is checked the way the original gateway checked CloudEvents 0.1.

Decisions where the contract is silent:

* 0.1 ``cloudEventsVersion`` must be a non-empty string but its value is not checked (as in
  the original); the event is then a 0.1 event and is delivered with ``"0.1"``.
* 0.1 keys match case-insensitively like Go's decoder; when one attribute is sent twice
  (``eventID`` and ``EventId``) the later member wins, as in Go.

The 1.0 rules are in ``events/structured_v1.py``; the emit shorthand ``{"event", "data"}``
(``shorthand=True``, the Events API's structured mode only) in ``events/shorthand.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventgateway.errors import EventParseError, PayloadTooLargeError
from eventgateway.events.model import CloudEvent
from eventgateway.events.shorthand import parse_shorthand
from eventgateway.events.structured_v1 import decode_member, parse_v1_exact, parse_v1_members
from eventgateway.events.validate import (
    go_validation_line,
    is_request_uri,
    json_kind,
    normalize_rfc3339,
)
from eventgateway.model.gojson import plain_syntax_message, replace_lone_surrogates

__all__ = ["DEFAULT_MAX_BATCH_EVENTS", "Batch", "parse_batch", "parse_structured"]

DEFAULT_MAX_BATCH_EVENTS = 1000
"""Events one ``application/cloudevents-batch+json`` request may carry."""


class Batch(list[CloudEvent]):
    """The events of one ``application/cloudevents-batch+json`` request (possibly none).

    A batch has no single sync response, so the Events API routes its entries to async
    subscriptions only; the type is how it tells a batch of one from a single event.
    """

    __slots__ = ()


_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY_OF_OBJECTS = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_RAW = msgspec.json.Decoder(msgspec.Raw)

# Canonical 0.1 member names, looked up by lower-cased key (Go matches case-insensitively).
_V01_NAMES = {
    name.lower(): name
    for name in (
        "eventType",
        "eventTypeVersion",
        "cloudEventsVersion",
        "source",
        "eventID",
        "eventTime",
        "schemaURL",
        "extensions",
        "contentType",
        "data",
    )
}
_KIND_BY_FIRST_BYTE = {ord("{"): "object", ord("["): "array", ord('"'): "string"}
_KIND_BY_FIRST_BYTE.update({ord("t"): "boolean", ord("f"): "boolean", ord("n"): "null"})
_NULL = b"null"


def _raw_kind(raw: msgspec.Raw) -> str:
    """Name the JSON type of a decoded (so non-empty, trimmed) Raw value by its first byte."""
    return _KIND_BY_FIRST_BYTE.get(memoryview(raw)[0], "number")


def _check_utf8(body: bytes, what: str) -> None:
    # msgspec skips over the bytes of a Raw member without checking them; invalid UTF-8 would
    # be spliced into every delivery, so refuse it here.
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventParseError(f"{what} is not valid UTF-8 JSON: {exc}") from None


class _V01Members(msgspec.Struct, forbid_unknown_fields=True):
    """The 0.1 members, exactly as named in the spec; an empty ``data`` Raw means absent."""

    eventType: str | None = None
    eventTypeVersion: str | None = None
    cloudEventsVersion: str | None = None
    source: str | None = None
    eventID: str | None = None
    eventTime: str | None = None
    schemaURL: str | None = None
    extensions: dict[str, Any] | None = None
    contentType: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


# Fast path for the common case: a 0.1 object with exactly-named members only. Anything
# else (unknown or differently-cased keys, wrong types, 1.0, not an object) fails validation
# and takes the general path, which also words the error.
_V01_EXACT = msgspec.json.Decoder(_V01Members)


def _not_json(what: str, body: bytes | msgspec.Raw, exc: msgspec.DecodeError) -> EventParseError:
    """Word msgspec's syntax error for the sender ("Input data was truncated" says little)."""
    if not bytes(body).strip():
        return EventParseError(f"{what} is missing: the request body is empty")
    return EventParseError(f"{what} is not valid JSON: {plain_syntax_message(str(exc))}")


def _wrong_shape(body: bytes | msgspec.Raw, what: str, expected: str) -> EventParseError:
    """Word the error for JSON of the wrong type (msgspec stops there before checking syntax)."""
    try:
        kind = _raw_kind(_RAW.decode(body))
    except msgspec.DecodeError as exc:
        return _not_json(what, body, exc)
    return EventParseError(f"{what} must be a JSON {expected}, got {kind}")


def _decode_members(body: bytes) -> dict[str, msgspec.Raw]:
    try:
        return _OBJECT.decode(body)
    except msgspec.ValidationError:
        raise _wrong_shape(body, "CloudEvent", "object") from None
    except msgspec.DecodeError as exc:
        raise _not_json("CloudEvent", body, exc) from None


_TOO_DEEP = "JSON nesting is too deep"


def parse_structured(body: bytes, *, shorthand: bool = False) -> CloudEvent:
    """Parse an ``application/cloudevents+json`` body (0.1, or 1.0 if it has ``specversion``).

    Args:
        body: the request body.
        shorthand: also accept the emit shorthand ``{"event": <type>, "data": ...}`` of the
            original Node SDK's README, as a 1.0 event (``events/shorthand.py``). Looked for
            only in an object that is neither 1.0 nor valid-looking 0.1, so valid events
            pay nothing.

    Raises:
        EventParseError: with a message naming the failing attribute.
    """
    try:
        return _parse_structured(body, shorthand)
    except RecursionError:  # msgspec's nesting limit is the interpreter's recursion limit
        raise EventParseError(f"CloudEvent is not valid: {_TOO_DEEP}") from None
    except EventParseError:
        # msgspec refuses a lone surrogate escape ("\ud800"); Go's decoder read it as
        # U+FFFD. Looked for only once parsing failed, so valid events pay nothing.
        readable = replace_lone_surrogates(body)
        if readable == body:  # nothing to replace (a valid pair is rewritten, unchanged)
            raise
        return parse_structured(readable, shorthand=shorthand)


def _parse_structured(body: bytes, shorthand: bool) -> CloudEvent:
    _check_utf8(body, "CloudEvent")
    if b'"specversion"' in body:
        event = parse_v1_exact(body)
        if event is not None:
            return event
    try:
        exact: _V01Members | None = _V01_EXACT.decode(body)
    except msgspec.ValidationError:
        exact = None
    except msgspec.DecodeError as exc:
        raise _not_json("CloudEvent", body, exc) from None
    if exact is not None:
        return _build_v01(exact)
    members = _decode_members(body)
    if "specversion" in members:
        return parse_v1_members(members)
    if shorthand and "event" in members:
        event = parse_shorthand(members)
        if event is not None:
            return event
    return _build_v01(_v01_members(members))


def parse_batch(body: bytes, *, max_events: int = DEFAULT_MAX_BATCH_EVENTS) -> Batch:
    """Parse an ``application/cloudevents-batch+json`` body: a JSON array of 1.0 events.

    An empty array is valid and gives no events. Errors name the failing entry's index.

    Args:
        body: the request body.
        max_events: the most events the batch may hold.

    Raises:
        EventParseError: e.g. ``event [2]: CloudEvent attribute 'id' is required``.
        PayloadTooLargeError: the batch holds more than ``max_events`` events (413).
    """
    try:
        return _parse_batch(body, max_events)
    except RecursionError:
        raise EventParseError(f"CloudEvents batch is not valid: {_TOO_DEEP}") from None
    except EventParseError:
        readable = replace_lone_surrogates(body)  # as in parse_structured
        if readable == body:  # nothing to replace (a valid pair is rewritten, unchanged)
            raise
        return parse_batch(readable, max_events=max_events)


def _parse_batch(body: bytes, max_events: int) -> Batch:
    _check_utf8(body, "CloudEvents batch")
    try:
        entries = _ARRAY_OF_OBJECTS.decode(body)
    except msgspec.ValidationError:
        entries = None  # some entry is not an object (or no array): find out below
    except msgspec.DecodeError as exc:
        raise _not_json("CloudEvents batch", body, exc) from None
    if entries is None:
        try:
            raws = _ARRAY.decode(body)
        except msgspec.ValidationError:
            raise _wrong_shape(body, "CloudEvents batch", "array") from None
        except msgspec.DecodeError as exc:  # e.g. trailing garbage after a bad entry
            raise _not_json("CloudEvents batch", body, exc) from None
        for index, raw in enumerate(raws):
            kind = _raw_kind(raw)
            if kind != "object":
                raise EventParseError(
                    f"event [{index}]: CloudEvent must be a JSON object, got {kind}"
                )
        raise AssertionError("unreachable: every entry is an object")  # pragma: no cover
    if len(entries) > max_events:
        raise PayloadTooLargeError(
            f"CloudEvents batch holds {len(entries)} events; the limit is {max_events} "
            "events per request: send them in smaller batches"
        )
    events = Batch()
    for index, members in enumerate(entries):
        try:
            if "specversion" not in members:
                raise EventParseError(
                    "CloudEvent attribute 'specversion' is required: a batch holds CloudEvents 1.0"
                )
            events.append(parse_v1_members(members))
        except EventParseError as exc:
            raise EventParseError(f"event [{index}]: {exc.message}") from None
    return events


def _string_member(raw: msgspec.Raw, name: str) -> str | None:
    """Decode a member that must be a string; ``null`` gives ``None``."""
    value = decode_member(raw, name)
    if value is None or type(value) is str:
        return value
    raise EventParseError(f"CloudEvent attribute '{name}' must be a string, got {json_kind(value)}")


def _v01_members(members: dict[str, msgspec.Raw]) -> _V01Members:
    """Match members case-insensitively, as Go's decoder did; unknown members are dropped."""
    fields: dict[str, Any] = {}
    for key, raw in members.items():
        name = _V01_NAMES.get(key.lower())
        if name is not None:
            fields[name] = raw  # a repeated attribute: the later member wins, as in Go
    for name, raw in fields.items():
        if name == "extensions":
            value = decode_member(raw, name)
            if value is not None and type(value) is not dict:
                raise EventParseError(
                    f"CloudEvent attribute 'extensions' must be a JSON object, "
                    f"got {json_kind(value)}"
                )
            fields[name] = value
        elif name != "data":
            fields[name] = _string_member(raw, name)
    return _V01Members(**fields)


def _build_v01(m: _V01Members) -> CloudEvent:
    time = m.eventTime
    if time is not None:
        time = normalize_rfc3339(time)
        if time is None:
            raise EventParseError(
                f"CloudEvent attribute 'eventTime' must be an RFC 3339 timestamp, "
                f"got {m.eventTime!r}"
            )
    event_type = m.eventType or ""
    source = m.source or ""
    event_id = m.eventID or ""
    if not (event_type and m.cloudEventsVersion and event_id and is_request_uri(source)):
        failures = [
            go_validation_line(field, tag)
            for field, tag, ok in (
                ("EventType", "required", event_type),
                ("CloudEventsVersion", "required", m.cloudEventsVersion),
                ("Source", "uri", is_request_uri(source)),
                ("EventID", "required", event_id),
            )
            if not ok
        ]
        raise EventParseError("CloudEvent doesn't validate: " + "\n".join(failures))
    data: Any = m.data
    size = len(data)
    if size == 0 or (size == 4 and bytes(data) == _NULL):
        data = None
    return CloudEvent(
        "0.1",
        event_id,
        source,
        event_type,
        time=time,
        datacontenttype=m.contentType or None,
        dataschema=m.schemaURL or None,
        type_version=m.eventTypeVersion or None,
        extensions=m.extensions or {},
        data=data,
    )
