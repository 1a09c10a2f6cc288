"""CloudEvents 1.0 in JSON (json-format 1.0.2): a decoded object's members → CloudEvent.

Shared by structured mode and batches. Attribute values arrive as :class:`msgspec.Raw` and
are decoded one by one; ``data`` stays Raw (the exact JSON text), ``data_base64`` becomes
``bytes``. Every error names the attribute.

Decisions where the spec leaves room:

* an optional attribute or extension whose value is ``null`` counts as absent (``data``
  excepted: ``"data": null`` is kept, and delivered, as JSON ``null``);
* ``time`` is validated (RFC 3339, lower-case ``t``/``z`` allowed) but kept exactly as sent;
* extension names longer than 20 characters are accepted (the limit is a SHOULD); values
  may be strings, numbers or booleans;
* ``data_base64`` must be standard base64 with padding.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from eventgateway.errors import EventParseError
from eventgateway.events.model import CloudEvent
from eventgateway.events.validate import (
    MediaTypeError,
    is_attribute_name,
    is_uri,
    is_uri_reference,
    json_kind,
    media_type,
    valid_rfc3339,
)

__all__ = ["decode_member", "parse_v1_exact", "parse_v1_members"]

_VALUE = msgspec.json.Decoder()
_V1_CORE = frozenset(
    (
        "specversion",
        "id",
        "source",
        "type",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "data",
        "data_base64",
    )
)


def decode_member(raw: msgspec.Raw, name: str) -> Any:
    """Decode one member's JSON value; ``name`` words the error.

    Raises:
        EventParseError: the value holds a number Python cannot represent (``1e400``, an
            integer of more than 4,300 digits); Go's decoder refused those too.
    """
    try:
        return _VALUE.decode(raw)
    except msgspec.ValidationError:  # the only thing an untyped decoder validates
        raise EventParseError(
            f"CloudEvent attribute '{name}' holds a number out of range: numbers must fit "
            "a 64-bit float (up to about 1.8e308), integers at most 4,300 digits"
        ) from None


def _required(value: str | None, name: str) -> str:
    if value is None:  # absent or null; an empty string was refused by _non_empty already
        raise EventParseError(f"CloudEvent attribute '{name}' is required")
    return value


def _non_empty(raw: msgspec.Raw, name: str) -> str | None:
    value = decode_member(raw, name)
    if value is None:
        return None
    if type(value) is not str:
        raise EventParseError(
            f"CloudEvent attribute '{name}' must be a non-empty string, got {json_kind(value)}"
        )
    if not value:
        raise EventParseError(f"CloudEvent attribute '{name}' must be a non-empty string")
    return value


def parse_v1_members(members: dict[str, msgspec.Raw]) -> CloudEvent:
    """Validate the members of a JSON object that has ``specversion`` and build the event.

    Raises:
        EventParseError: naming the failing attribute.
    """
    spec = decode_member(members["specversion"], "specversion")
    if spec != "1.0":
        shown = repr(spec) if type(spec) is str else json_kind(spec)
        raise EventParseError(
            f"CloudEvent attribute 'specversion' must be '1.0', got {shown}: supported versions "
            "are 1.0 (with specversion) and 0.1 (without specversion, using cloudEventsVersion)"
        )
    attrs: dict[str, str | None] = {}
    extensions: dict[str, Any] = {}
    data: Any = None
    has_data = False
    for key, raw in members.items():
        if key in _V1_CORE:
            if key == "data":
                has_data = True
                data = raw
            elif key == "data_base64":
                continue
            elif key != "specversion":
                attrs[key] = _non_empty(raw, key)
            continue
        if not is_attribute_name(key):
            raise EventParseError(
                f"CloudEvent attribute name {key!r} is invalid: attribute names are "
                "lower-case letters a-z and digits 0-9"
            )
        value = decode_member(raw, key)
        if value is None:
            continue
        if type(value) in (dict, list):
            raise EventParseError(
                f"CloudEvent extension attribute '{key}' must be a string, number or boolean, "
                f"got {json_kind(value)}"
            )
        extensions[key] = value
    raw_b64 = members.get("data_base64")
    if raw_b64 is not None:
        if has_data:
            raise EventParseError("CloudEvent has both 'data' and 'data_base64': send one of them")
        data = _decode_base64(raw_b64)
    event_id = _required(attrs.get("id"), "id")
    source = _required(attrs.get("source"), "source")
    if not is_uri_reference(source):
        raise EventParseError(
            f"CloudEvent attribute 'source' must be a URI-reference, got {source!r}"
        )
    event_type = _required(attrs.get("type"), "type")
    time = attrs.get("time")
    if time is not None and not valid_rfc3339(time):
        raise EventParseError(
            f"CloudEvent attribute 'time' must be an RFC 3339 timestamp, got {time!r}"
        )
    dataschema = attrs.get("dataschema")
    if dataschema is not None and not is_uri(dataschema):
        raise EventParseError(
            f"CloudEvent attribute 'dataschema' must be an absolute URI, got {dataschema!r}"
        )
    datacontenttype = attrs.get("datacontenttype")
    if datacontenttype is not None:
        try:
            media_type(datacontenttype)
        except MediaTypeError as exc:
            raise EventParseError(
                f"CloudEvent attribute 'datacontenttype' is not a media type "
                f"({datacontenttype!r}): {exc}"
            ) from None
    return CloudEvent(
        "1.0",
        event_id,
        source,
        event_type,
        time=time,
        datacontenttype=datacontenttype,
        dataschema=dataschema,
        subject=attrs.get("subject"),
        extensions=extensions,
        data=data,
    )


def _decode_base64(raw: msgspec.Raw) -> bytes | None:
    text = decode_member(raw, "data_base64")
    if text is None:
        return None
    if type(text) is not str:
        raise EventParseError(
            f"CloudEvent attribute 'data_base64' must be a base64 string, got {json_kind(text)}"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EventParseError(
            "CloudEvent attribute 'data_base64' is not valid base64 (RFC 4648, with padding)"
        ) from None


class _V1Exact(msgspec.Struct, forbid_unknown_fields=True):
    """The 1.0 core attributes only, all strings; ``data`` stays Raw (UNSET: absent)."""

    specversion: str
    id: str
    source: str
    type: str
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: str | None = None
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_V1_EXACT = msgspec.json.Decoder(_V1Exact)


def parse_v1_exact(body: bytes) -> CloudEvent | None:
    """The common case in one decoding pass: a valid 1.0 event without extensions.

    Returns ``None`` for anything else — extensions, ``data_base64``, nulls or wrong types
    in required attributes, any invalid value — which :func:`parse_v1_members` then
    parses the general way, wording the error; so both paths accept exactly the same.
    """
    try:
        exact = _V1_EXACT.decode(body)
    except msgspec.DecodeError:  # ValidationError included
        return None
    if exact.specversion != "1.0" or not (exact.id and exact.source and exact.type):
        return None
    time, subject = exact.time, exact.subject
    dataschema, datacontenttype = exact.dataschema, exact.datacontenttype
    if "" in (time, subject, dataschema, datacontenttype):
        return None
    if not is_uri_reference(exact.source):
        return None
    if time is not None and not valid_rfc3339(time):
        return None
    if dataschema is not None and not is_uri(dataschema):
        return None
    if datacontenttype is not None:
        try:
            media_type(datacontenttype)
        except MediaTypeError:
            return None
    data = exact.data
    return CloudEvent(
        "1.0",
        exact.id,
        exact.source,
        exact.type,
        time=time,
        datacontenttype=datacontenttype,
        dataschema=dataschema,
        subject=subject,
        extensions={},
        data=None if data is msgspec.UNSET else data,
    )
