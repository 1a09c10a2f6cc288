"""JSON ⇄ CloudEvent: the delivery encoding and the durable queue's round trip.

This is the one module that picks the JSON library (msgspec). Everything else encodes and
decodes through :func:`encode_json`/:func:`decode_json` or the event functions here.

* 0.1 events are delivered in the shape Go's ``json.Marshal`` gave the original gateway's
  ``Event`` struct (contract §2.6): fixed key order, empty optional members omitted,
  ``data`` always present.
* 1.0 events are delivered in structured mode (JSON format 1.0.2), or in binary mode by
  :func:`encode_binary` for deliveries that ask for it.
* ``msgspec.Raw`` data is spliced in byte for byte; ``bytes`` become base64.

:func:`decode_event` reads back what :func:`encode_event` wrote, without validating it again
(the queue only holds events that were valid when accepted). Its ``data`` is ``None``,
``bytes`` (1.0 ``data_base64``) or ``msgspec.Raw``: a stored ``http.request`` event comes
back with its data as Raw JSON, so ``is_http_request`` is false for it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from eventgateway.errors import EventParseError, ValidationError
from eventgateway.events.body import is_json_media_type
from eventgateway.events.headers import TOKEN_CHARS
from eventgateway.events.model import CloudEvent
from eventgateway.events.validate import MediaTypeError, media_type

__all__ = ["decode_event", "decode_json", "encode_binary", "encode_event", "encode_json"]

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BINARY = (bytes, bytearray, memoryview)
_NULL = b"null"
_V1_CORE = frozenset(
    ("specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time")
)
_V1_RESERVED = _V1_CORE | {"data", "data_base64"}


def encode_json(value: Any) -> bytes:
    """Encode a JSON value (dicts keep their order; ``bytes`` become base64; no newline)."""
    return _ENCODER.encode(value)


def decode_json(raw: bytes) -> Any:
    """Decode JSON text into plain Python values.

    Raises:
        ValidationError: the text is not valid JSON (or not UTF-8); the message says where.
    """
    try:
        return _DECODER.decode(raw)
    except (ValueError, RecursionError) as exc:  # also bad UTF-8, and nesting too deep
        raise ValidationError(f"invalid JSON: {exc}") from exc


def encode_event(event: CloudEvent) -> bytes:
    """Serialise an event as a delivery body (``application/cloudevents+json``).

    0.1: keys ``eventType``, ``eventTypeVersion``, ``cloudEventsVersion``, ``source``,
    ``eventID``, ``eventTime``, ``schemaURL``, ``extensions``, ``contentType``, ``data``, the
    optional ones left out when empty. 1.0: ``specversion``, ``id``, ``source``, ``type``,
    ``datacontenttype``, ``dataschema``, ``subject``, ``time`` (when set), the extension
    attributes, then ``data`` or ``data_base64``. Extensions named like a 1.0 attribute
    are left out rather than written twice.
    """
    if event.specversion == "1.0":
        return _ENCODER.encode(_v1_members(event))
    out: dict[str, Any] = {"eventType": event.type}
    if event.type_version:
        out["eventTypeVersion"] = event.type_version
    out["cloudEventsVersion"] = event.specversion
    out["source"] = event.source
    out["eventID"] = event.id
    if event.time:
        out["eventTime"] = event.time
    if event.dataschema:
        out["schemaURL"] = event.dataschema
    if event.extensions:
        out["extensions"] = event.extensions
    if event.datacontenttype:
        out["contentType"] = event.datacontenttype
    out["data"] = event.data
    return _ENCODER.encode(out)


def _v1_members(event: CloudEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    if event.datacontenttype is not None:
        out["datacontenttype"] = event.datacontenttype
    if event.dataschema is not None:
        out["dataschema"] = event.dataschema
    if event.subject is not None:
        out["subject"] = event.subject
    if event.time is not None:
        out["time"] = event.time
    for name, value in event.extensions.items():
        if name not in _V1_RESERVED:
            out[name] = value
    data = event.data
    if isinstance(data, _BINARY):
        out["data_base64"] = data  # msgspec writes bytes as padded standard base64
    elif data is not None:
        out["data"] = data
    return out


class _Stored01(msgspec.Struct):
    """The 0.1 delivery shape, read back; ``specversion`` only detects a 1.0 event."""

    eventType: str = ""
    eventTypeVersion: str | None = None
    cloudEventsVersion: str = "0.1"
    source: str = ""
    eventID: str = ""
    eventTime: str | None = None
    schemaURL: str | None = None
    extensions: dict[str, Any] = msgspec.field(default_factory=dict)
    contentType: str | None = None
    data: msgspec.Raw = msgspec.Raw(_NULL)
    specversion: msgspec.Raw = msgspec.Raw(b"")


_STORED01 = msgspec.json.Decoder(_Stored01)


def decode_event(raw: bytes) -> CloudEvent:
    """Read back an event written by :func:`encode_event` (the durable queue's format).

    ``encode_event(decode_event(encode_event(e))) == encode_event(e)`` for every event.

    Raises:
        EventParseError: ``raw`` is not an encoded event.
    """
    try:
        if raw.startswith(b'{"specversion":'):  # how encode_event starts every 1.0 event
            return _decode_v1(_MEMBERS.decode(raw))
        try:
            stored: _Stored01 | None = _STORED01.decode(raw)
        except msgspec.ValidationError:
            stored = None  # e.g. a 1.0 event whose extensions clash with 0.1 member names
        if stored is None or len(stored.specversion):
            return _decode_v1(_MEMBERS.decode(raw))
    except (ValueError, KeyError, RecursionError) as exc:
        raise EventParseError(f"stored event is not valid: {exc!r}") from exc
    data: Any = stored.data
    if len(data) == 4 and bytes(data) == _NULL:
        data = None
    return CloudEvent(
        stored.cloudEventsVersion,
        stored.eventID,
        stored.source,
        stored.eventType,
        time=stored.eventTime,
        datacontenttype=stored.contentType,
        dataschema=stored.schemaURL,
        type_version=stored.eventTypeVersion,
        extensions=stored.extensions,
        data=data,
    )


def _decode_v1(members: dict[str, msgspec.Raw]) -> CloudEvent:
    attrs: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in members.items():
        if name in _V1_CORE:
            attrs[name] = _DECODER.decode(value)
        elif name not in ("data", "data_base64"):
            extensions[name] = _DECODER.decode(value)
    data: Any = members.get("data")
    encoded = members.get("data_base64")
    if encoded is not None:
        data = msgspec.json.decode(encoded, type=bytes)
    return CloudEvent(
        "1.0",
        attrs["id"],
        attrs["source"],
        attrs["type"],
        time=attrs.get("time"),
        datacontenttype=attrs.get("datacontenttype"),
        dataschema=attrs.get("dataschema"),
        subject=attrs.get("subject"),
        extensions=extensions,
        data=data,
    )


# HTTP binding 1.0.2 §3.1.3.2: space, '"', '%' and anything outside printable ASCII are
# percent-encoded in ce-* header values.
_NEEDS_ESCAPE = frozenset(' "%')
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_TOKEN = frozenset(TOKEN_CHARS)


def _header_value(value: Any) -> str:
    text = value if type(value) is str else _ENCODER.encode(value).decode()
    if text.isascii() and text.isprintable() and not _NEEDS_ESCAPE.intersection(text):
        return text
    return quote(text, safe=_HEADER_SAFE)


def encode_binary(event: CloudEvent) -> tuple[list[tuple[str, str]], bytes]:
    """Serialise an event in CloudEvents 1.0 binary mode: ``ce-*`` headers and a body.

    A 0.1 event is mapped onto 1.0 attributes (``eventTypeVersion`` and the extensions become
    ``ce-*`` headers; object values are sent as JSON text; names that cannot be header names
    are left out). ``content-type`` is ``datacontenttype``, or ``application/json`` for JSON
    data without one. The body is the data: Raw JSON as sent, bytes as is, a string as UTF-8
    when the content type is not JSON (also a Raw JSON string, per the JSON format's rule
    for non-JSON data), anything else as JSON.

    Returns:
        ``(headers, body)``; header names are lower case.
    """
    headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", _header_value(event.id)),
        ("ce-source", _header_value(event.source)),
        ("ce-type", _header_value(event.type)),
    ]
    for name, value in (
        ("time", event.time),
        ("subject", event.subject),
        ("dataschema", event.dataschema),
        ("eventtypeversion", event.type_version),
    ):
        if value:
            headers.append(("ce-" + name, _header_value(value)))
    for name, value in event.extensions.items():
        lowered = name.lower()
        if not name or value is None or lowered in _V1_RESERVED or not _TOKEN.issuperset(name):
            continue
        headers.append(("ce-" + lowered, _header_value(value)))
    data = event.data
    content_type = event.datacontenttype
    if content_type is None and data is not None and not isinstance(data, _BINARY):
        content_type = "application/json"
    if content_type is not None:
        headers.append(("content-type", content_type))
    return headers, _binary_body(data, content_type)


def _binary_body(data: Any, content_type: str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, _BINARY):
        return bytes(data)
    textual = content_type is not None and not _is_json_type(content_type)
    if isinstance(data, msgspec.Raw):
        body = bytes(data)
        if textual and body[:1] == b'"':
            return str(_DECODER.decode(body)).encode()
        return body
    if textual and type(data) is str:
        return data.encode()
    return _ENCODER.encode(data)


def _is_json_type(content_type: str) -> bool:
    try:
        return is_json_media_type(media_type(content_type))
    except MediaTypeError:
        return False
