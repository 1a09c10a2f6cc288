"""Binary mode: event attributes in ``ce-*`` headers, data in the body.

CloudEvents 1.0 (a ``ce-specversion`` header is present) follows the 1.0.2 HTTP binding:
``ce-id``, ``ce-source``, ``ce-type`` required; ``ce-time``, ``ce-subject``,
``ce-dataschema`` optional; every other ``ce-*`` header is an extension attribute; header
values are percent-decoded; ``datacontenttype`` is the Content-Type header.

CloudEvents 0.1 (``CE-EventType``, ``CE-CloudEventsVersion``, ``CE-Source``, ``CE-EventID``)
follows the original gateway, except for one deliberate fix: extension names from
``Ce-X-*`` headers lose exactly the ``Ce-X-`` prefix. The original trimmed a *set* of
characters, so ``CE-X-Color`` became ``olor``; here it becomes ``color``.

Decisions where the contract is silent (1.0): a ``ce-*`` header whose name is not a valid
attribute name (``ce-trace-id``) and ``ce-datacontenttype``/``ce-data`` (the binding carries
those in Content-Type and the body) are refused with a 400 naming the header; when a
header is repeated, the first value counts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec

from eventgateway.errors import EventParseError
from eventgateway.events.body import is_json_media_type, normalize_body
from eventgateway.events.headers import canonical_header_name, header_text
from eventgateway.events.model import CloudEvent
from eventgateway.events.validate import (
    go_validation_line,
    is_attribute_name,
    is_request_uri,
    is_uri,
    is_uri_reference,
    normalize_rfc3339,
    valid_rfc3339,
)

__all__ = ["V01_BINARY_HEADERS", "parse_binary_v01", "parse_binary_v1"]

V01_BINARY_HEADERS = (b"ce-eventtype", b"ce-cloudeventsversion", b"ce-source", b"ce-eventid")
"""All four present and non-empty select 0.1 binary mode (contract §2.2 B)."""

_RAW = msgspec.json.Decoder(msgspec.Raw)
_V1_HEADER_ATTRS = frozenset(
    ("specversion", "id", "source", "type", "time", "subject", "dataschema")
)
_V1_REFUSED = frozenset(("datacontenttype", "data"))


def _v1_value(value: bytes) -> str:
    text = header_text(value)
    # HTTP binding 1.0.2 §3.1.3.2: values are percent-encoded beyond printable ASCII.
    return unquote(text, errors="replace") if "%" in text else text


def parse_binary_v1(
    headers: list[tuple[bytes, bytes]], content_type: str | None, media_type: str, body: bytes
) -> CloudEvent:
    """Build a CloudEvents 1.0 event from binary-mode headers and body.

    Args:
        headers: the request headers, ASGI style (lower-case names).
        content_type: the raw Content-Type value (becomes ``datacontenttype``), or ``None``.
        media_type: the parsed media type of ``content_type``.
        body: the raw body: ``None`` data when empty, :class:`msgspec.Raw` when the media type
            is JSON and the body is valid JSON, else the bytes.

    Raises:
        EventParseError: naming the missing or invalid header.
    """
    attrs: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    for name, value in headers:
        if not name.startswith(b"ce-"):
            continue
        attr = name[3:].decode("latin-1")
        if attr in attrs or attr in extensions:
            continue
        if attr in _V1_HEADER_ATTRS:
            attrs[attr] = _v1_value(value)
        elif attr in _V1_REFUSED:
            raise EventParseError(
                f"header 'ce-{attr}' is not allowed: in binary mode {attr} travels in the "
                + ("Content-Type header" if attr == "datacontenttype" else "request body")
            )
        elif is_attribute_name(attr):
            extensions[attr] = _v1_value(value)
        else:
            raise EventParseError(
                f"header 'ce-{attr}' does not name a valid CloudEvent attribute: attribute "
                "names are lower-case letters a-z and digits 0-9"
            )
    spec = attrs.get("specversion", "")
    if spec != "1.0":
        raise EventParseError(
            f"header 'ce-specversion' must be '1.0', got {spec!r}: supported "
            "versions are 1.0 (ce-specversion) and 0.1 (CE-CloudEventsVersion)"
        )
    for attr in ("id", "source", "type"):
        if not attrs.get(attr):
            raise EventParseError(
                f"CloudEvent attribute '{attr}' (header 'ce-{attr}') is required and must not "
                "be empty"
            )
    if not is_uri_reference(attrs["source"]):
        raise EventParseError(
            f"CloudEvent attribute 'source' (header 'ce-source') must be a URI-reference, "
            f"got {attrs['source']!r}"
        )
    time = attrs.get("time")
    if time is not None and not valid_rfc3339(time):
        raise EventParseError(
            f"CloudEvent attribute 'time' (header 'ce-time') must be an RFC 3339 timestamp, "
            f"got {time!r}"
        )
    dataschema = attrs.get("dataschema")
    if dataschema is not None and not is_uri(dataschema):
        raise EventParseError(
            f"CloudEvent attribute 'dataschema' (header 'ce-dataschema') must be an absolute "
            f"URI, got {dataschema!r}"
        )
    subject = attrs.get("subject")
    if subject is not None and not subject:
        raise EventParseError(
            "CloudEvent attribute 'subject' (header 'ce-subject') must not be empty"
        )
    return CloudEvent(
        "1.0",
        attrs["id"],
        attrs["source"],
        attrs["type"],
        time=time,
        datacontenttype=content_type or None,
        dataschema=dataschema,
        subject=subject,
        extensions=extensions,
        data=_v1_data(body, media_type),
    )


def _v1_data(body: bytes, media_type: str) -> Any:
    if not body:
        return None
    if is_json_media_type(media_type):
        try:
            raw = _RAW.decode(body)
            if not body.isascii():
                body.decode("utf-8")  # Raw keeps the bytes unchecked; deliveries must be UTF-8
        except (ValueError, RecursionError):  # not JSON after all: deliver it as bytes
            return body
        return raw
    return body


def parse_binary_v01(
    headers: list[tuple[bytes, bytes]],
    first: dict[bytes, bytes],
    content_type: str | None,
    media_type: str,
    body: bytes,
) -> CloudEvent:
    """Build a CloudEvents 0.1 event from ``CE-*`` headers, as the original gateway did.

    Args:
        headers: the request headers, ASGI style (lower-case names).
        first: the first value of each header name (Go's ``Header.Get``).
        content_type: the raw Content-Type value (becomes ``contentType``), or ``None``.
        media_type: the parsed media type, used to normalise the body (contract §2.3).
        body: the raw body.

    Raises:
        EventParseError: an invalid ``CE-Source`` or ``CE-EventTime``.
    """
    source = header_text(first[b"ce-source"])
    if not is_request_uri(source):
        raise EventParseError("CloudEvent doesn't validate: " + go_validation_line("Source", "uri"))
    time: str | None = None
    raw_time = first.get(b"ce-eventtime")
    if raw_time:
        time = normalize_rfc3339(header_text(raw_time))
        if time is None:
            raise EventParseError(
                f"header 'CE-EventTime' must be an RFC 3339 timestamp, got "
                f"{header_text(raw_time)!r}"
            )
    collected: dict[str, list[str]] = {}
    for name, value in headers:
        if name.startswith(b"ce-x-"):
            canonical = canonical_header_name(name)
            if canonical.startswith("Ce-X-") and len(canonical) > 5:
                ext = canonical[5].lower() + canonical[6:]
                collected.setdefault(ext, []).append(header_text(value))
    return CloudEvent(
        "0.1",
        header_text(first[b"ce-eventid"]),
        source,
        header_text(first[b"ce-eventtype"]),
        time=time,
        datacontenttype=content_type or None,
        dataschema=header_text(first.get(b"ce-schemaurl", b"")) or None,
        type_version=header_text(first.get(b"ce-eventtypeversion", b"")) or None,
        extensions={name: ", ".join(values) for name, values in collected.items()},
        data=normalize_body(body, media_type),
    )
