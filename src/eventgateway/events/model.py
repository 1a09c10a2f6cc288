"""The CloudEvent every other module passes around: 0.1 and 1.0 in one class.

This is the hot path (one instance per accepted event), so the class is a plain class with
``__slots__`` and its constructor does no validation: parsers in ``events/`` validate what
comes from outside, and code that builds events itself is trusted.

``data`` holds one of four things, and the codec serialises each differently:

* ``None`` — no data (0.1 writes ``"data":null``, 1.0 omits it);
* :class:`msgspec.Raw` — JSON text kept exactly as the client sent it, never decoded;
* ``bytes`` — a binary payload (0.1: a padded standard base64 string, 1.0: ``data_base64``);
* any other JSON value built by the gateway, e.g. the ``http.request`` object (a dict).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "HTTP_REQUEST_TYPE",
    "SYSTEM_PREFIX",
    "TRANSFORMATION_VERSION",
    "TRANSFORMED_SOURCE",
    "CloudEvent",
    "format_rfc3339",
    "transformed_event",
]

SYSTEM_PREFIX = "eventgateway."
"""Event types starting with this are the gateway's own; clients may not emit them."""

HTTP_REQUEST_TYPE = "http.request"
TRANSFORMATION_VERSION = "0.1"
TRANSFORMED_SOURCE = (
    "https://serverless.com/event-gateway/#transformationVersion=" + TRANSFORMATION_VERSION
)


class CloudEvent:
    """One event, CloudEvents 0.1 (``specversion="0.1"``) or 1.0 (``"1.0"``).

    Attribute names are the 1.0 ones; the 0.1 names map onto them: ``eventType`` → ``type``,
    ``eventID`` → ``id``, ``eventTime`` → ``time``, ``contentType`` → ``datacontenttype``,
    ``schemaURL`` → ``dataschema``, ``eventTypeVersion`` → ``type_version`` (0.1 only).
    ``subject`` exists in 1.0 only. ``extensions`` is the 0.1 ``extensions`` object, or the
    1.0 extension attributes. For 0.1 events ``time`` is kept in the form the original gateway
    delivered (Go's RFC 3339 with nanoseconds, trailing zeros dropped).
    """

    __slots__ = (
        "data",
        "datacontenttype",
        "dataschema",
        "extensions",
        "id",
        "source",
        "specversion",
        "subject",
        "time",
        "type",
        "type_version",
    )

    specversion: str
    id: str
    source: str
    type: str
    time: str | None
    datacontenttype: str | None
    dataschema: str | None
    subject: str | None
    type_version: str | None
    extensions: dict[str, Any]
    data: Any

    def __init__(
        self,
        specversion: str,
        id: str,
        source: str,
        type: str,
        *,
        time: str | None = None,
        datacontenttype: str | None = None,
        dataschema: str | None = None,
        subject: str | None = None,
        type_version: str | None = None,
        extensions: dict[str, Any] | None = None,
        data: Any = None,
    ) -> None:
        self.specversion = specversion
        self.id = id
        self.source = source
        self.type = type
        self.time = time
        self.datacontenttype = datacontenttype
        self.dataschema = dataschema
        self.subject = subject
        self.type_version = type_version
        self.extensions = {} if extensions is None else extensions
        self.data = data

    def copy(self) -> CloudEvent:
        """Return a shallow copy that owns its ``extensions`` dict and, if any, its data dict.

        That is exactly what may be changed per delivery: the authorizer result goes into
        ``extensions`` and sync routes set ``data["params"]`` on ``http.request`` events.
        """
        data = self.data
        return CloudEvent(
            self.specversion,
            self.id,
            self.source,
            self.type,
            time=self.time,
            datacontenttype=self.datacontenttype,
            dataschema=self.dataschema,
            subject=self.subject,
            type_version=self.type_version,
            extensions=dict(self.extensions),
            data=dict(data) if type(data) is dict else data,
        )

    @property
    def is_http_request(self) -> bool:
        """Whether this is a gateway-built ``http.request`` event (its data is the request dict)."""
        return self.type == HTTP_REQUEST_TYPE and type(self.data) is dict

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CloudEvent):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return (
            f"CloudEvent(specversion={self.specversion!r}, id={self.id!r}, "
            f"source={self.source!r}, type={self.type!r})"
        )


def format_rfc3339(moment: datetime) -> str:
    """Render an aware datetime like Go's ``time.RFC3339Nano`` (trailing zeros dropped, ``Z``)."""
    text = moment.isoformat()
    date_time, zone = text[:19], text[19:]
    frac = ""
    if zone.startswith("."):
        frac = zone[1:7].rstrip("0")
        zone = zone[7:]
    if zone in ("+00:00", "-00:00"):
        zone = "Z"
    return date_time + ("." + frac if frac else "") + zone


def transformed_event(event_type: str, content_type: str, data: Any) -> CloudEvent:
    """Build a gateway-made 0.1 event: the "transformed event" envelope of contract §2.4.

    Used for ``http.request`` events, legacy ``Event:`` header requests and system events.
    ``eventTime`` is now in UTC (the original used the server's local zone).
    """
    return CloudEvent(
        "0.1",
        str(uuid.uuid4()),
        TRANSFORMED_SOURCE,
        event_type,
        time=format_rfc3339(datetime.now(UTC)),
        datacontenttype=content_type,
        extensions={
            "eventgateway": {
                "transformed": "true",
                "transformation-version": TRANSFORMATION_VERSION,
            }
        },
        data=data,
    )
