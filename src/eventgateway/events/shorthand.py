"""The emit shorthand: ``{"event": <type>, "data": ...}`` as a structured body.

The original Node SDK's ``emit(event)`` (``@serverless/event-gateway-sdk`` 0.11.0) posts
``JSON.stringify(event)`` as ``application/cloudevents+json``; its README and the
walkthrough call it as ``emit({event, data})``, the shape its ≤0.7 legacy emit took. The
original gateway refused that body (no ``eventType``); this gateway accepts it in
structured mode only, as the CloudEvents 1.0 event the Python SDK's
``emit(event=..., data=...)`` sends (an addition, docs/wire-compatibility.md).

The shorthand is an object whose members are ``event`` (required, a non-empty string, as
``type`` must be), ``data`` (optional, any JSON, kept as the exact text sent) and
``dataType`` (optional, the media type of ``data``; ``null`` counts as absent) and nothing
else. Any other object — an extra member, a CloudEvents attribute in any case, a wrong
type, an invalid ``dataType`` — is not the shorthand and is refused as before, with the
0.1 validation message.

The event: ``type`` = ``event``; ``id`` = a new UUID4; ``source`` = :data:`SHORTHAND_SOURCE`
(the Python SDK's default source); ``time`` = now; ``datacontenttype`` = ``dataType``, or
``application/json`` when ``data`` is present; ``data`` = ``data``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

import msgspec

from eventgateway.events.model import CloudEvent, format_rfc3339
from eventgateway.events.validate import MediaTypeError, media_type

__all__ = ["SHORTHAND_SOURCE", "parse_shorthand"]

SHORTHAND_SOURCE: Final = "/eventgateway/sdk"
"""``source`` of a shorthand event: the Python SDK's ``DEFAULT_SOURCE`` (``sdk/_emit.py``).

The shorthand is an SDK's emit without a source, so it gets what the Python SDK gives the
same call; subscribers and filters then see one source whichever SDK sent the event. (The
gateway's ``TRANSFORMED_SOURCE`` marks 0.1 events it wrapped, with the ``transformed``
extension: this is a 1.0 event the client described.)
"""

_MEMBERS: Final = frozenset(("event", "data", "dataType"))
_JSON: Final = "application/json"
_TEXT = msgspec.json.Decoder(str)
_OPTIONAL_TEXT = msgspec.json.Decoder(str | None)


def parse_shorthand(members: dict[str, msgspec.Raw]) -> CloudEvent | None:
    """The 1.0 event an ``{event, data?, dataType?}`` object stands for, else ``None``.

    Args:
        members: a JSON object's members, values undecoded (as structured mode decodes
            them); the caller has checked that it has no ``specversion``.
    """
    raw_type = members.get("event")
    if raw_type is None or not members.keys() <= _MEMBERS:
        return None
    try:
        event_type = _TEXT.decode(raw_type)
        raw_data_type = members.get("dataType")
        data_type = None if raw_data_type is None else _OPTIONAL_TEXT.decode(raw_data_type)
    except msgspec.DecodeError:  # a number, object, …: ValidationError is a DecodeError
        return None
    if not event_type:
        return None
    data = members.get("data")
    if data_type is not None:
        if not data_type:  # media_type("") would read as application/octet-stream
            return None
        try:
            media_type(data_type)
        except MediaTypeError:
            return None
    elif data is not None:
        data_type = _JSON
    return CloudEvent(
        "1.0",
        str(uuid.uuid4()),
        SHORTHAND_SOURCE,
        event_type,
        time=format_rfc3339(datetime.now(UTC)),
        datacontenttype=data_type,
        extensions={},
        data=data,
    )
