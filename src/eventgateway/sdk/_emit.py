"""How an emit is put on the wire — no I/O.

Three ways to send one event (README "Sending events"): **structured** (a CloudEvents 1.0
JSON document, ``application/cloudevents+json``), **binary** (attributes in ``ce-*``
headers, the data as the body) and **legacy** (the original's ``Event: <type>`` header and
the data as the body); plus a mapping sent as is, and batches.

An emit is sent again only when the gateway refused it or never received it in full
(``_retry``): a path may have a sync subscription, whose function runs once per copy that
arrives. ``idempotent=True`` also repeats it after a read timeout or a dropped connection,
which is safe when only async at-least-once subscriptions match: the gateway drops a
repeated (``source``, ``id``) within its de-duplication window (at-most-once deliveries
bypass it). It needs ids, so legacy requests (the gateway makes their ids) cannot be.
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from eventgateway.sdk._wire import Retry, dumps

__all__ = ["BATCH", "DEFAULT_SOURCE", "STRUCTURED", "Encoded", "encode_batch", "encode_emit"]

DEFAULT_SOURCE: Final = "/eventgateway/sdk"
STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
MODES: Final = ("structured", "binary", "legacy")
# HTTP binding 1.0.2 §3.1.3.2: ce-* values percent-encode space, '"', '%' and non-printables.
_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_BINARY: Final = (bytes, bytearray, memoryview)


@dataclass(frozen=True)
class Encoded:
    """An emit's headers and body, and what may be retried."""

    headers: dict[str, str]
    content: bytes
    retry: Retry


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds: ``2026-11-26T18:20:07.365123Z``."""
    moment = datetime.datetime.now(datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def is_json_type(content_type: str) -> bool:
    """Whether a content type is JSON (``application/json`` or ``…+json``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def encode_data(data: Any, content_type: str) -> bytes:
    """``data`` as a request body: bytes as they are, JSON for JSON types, text as UTF-8.

    Raises:
        TypeError: ``data`` is neither bytes nor text and ``content_type`` is not JSON.
    """
    if data is None:
        return b""
    if isinstance(data, _BINARY):
        return bytes(data)
    if is_json_type(content_type):
        return dumps(data)
    if isinstance(data, str):
        return data.encode()
    raise TypeError(
        f"data of type {type(data).__name__} cannot be sent as {content_type!r}: "
        "pass bytes or str, or use a JSON data_content_type"
    )


def structured_event(
    event: str,
    data: Any,
    *,
    source: str,
    id: str,
    time: str,
    content_type: str,
    partition_key: str | None,
) -> dict[str, Any]:
    """A CloudEvents 1.0 event in the JSON format; bytes travel as ``data_base64``."""
    cloudevent: dict[str, Any] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": event,
        "time": time,
    }
    if partition_key is not None:
        cloudevent["partitionkey"] = partition_key
    if data is not None:
        cloudevent["datacontenttype"] = content_type
        if isinstance(data, _BINARY):
            cloudevent["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
        else:
            cloudevent["data"] = data
    return cloudevent


def binary_headers(attributes: Mapping[str, str | None]) -> dict[str, str]:
    """``ce-<name>`` headers of the attributes that are not ``None``, values escaped."""
    return {
        f"ce-{name}": quote(value, safe=_HEADER_SAFE)
        for name, value in attributes.items()
        if value is not None
    }


def has_id(cloudevent: Mapping[str, Any]) -> bool:
    """Whether a 1.0 (``id``) or 0.1 (``eventID``) event names its id."""
    return bool(cloudevent.get("id") or cloudevent.get("eventID"))


def merge_headers(base: Mapping[str, str], extra: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``base`` with ``extra`` applied on top, header names compared case-insensitively."""
    merged = dict(base)
    for name, value in extra:
        for existing in [key for key in merged if key.lower() == name.lower()]:
            del merged[existing]
        merged[name] = value
    return merged


def encode_emit(
    event: str | None,
    data: Any,
    *,
    cloudevent: Mapping[str, Any] | None,
    source: str,
    id: str | None,
    data_content_type: str,
    mode: str,
    partition_key: str | None,
    idempotent: bool = False,
) -> Encoded:
    """The headers and body of one emit (arguments as ``AsyncEventGateway.emit``'s).

    Raises:
        ValueError: arguments that do not go together.
        TypeError: ``data`` cannot be encoded.
    """
    if cloudevent is not None:
        given = {"event": event, "data": data, "id": id, "partition_key": partition_key}
        clashing = [name for name, value in given.items() if value is not None]
        if mode != "structured":
            clashing.append("mode")
        if clashing:
            raise ValueError(
                f"cloudevent= is sent as is (structured): put {', '.join(clashing)} into the "
                "mapping instead of passing them too"
            )
        retry = _retry(idempotent, carries_id=has_id(cloudevent))
        return Encoded({"Content-Type": STRUCTURED}, dumps(dict(cloudevent)), retry)
    if not event:
        raise ValueError("emit needs event= (the event type, e.g. 'user.created') or cloudevent=")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "legacy":
        if id is not None or partition_key is not None:
            raise ValueError(
                "legacy mode sends only the type (Event header) and data: the gateway makes "
                "the id, so id= and partition_key= need mode 'structured' or 'binary'"
            )
        headers = {"Event": event, "Content-Type": data_content_type}
        retry = _retry(idempotent, carries_id=False)
        return Encoded(headers, encode_data(data, data_content_type), retry)
    event_id, time = id or str(uuid.uuid4()), now_rfc3339()
    if mode == "structured":
        built = structured_event(
            event,
            data,
            source=source,
            id=event_id,
            time=time,
            content_type=data_content_type,
            partition_key=partition_key,
        )
        return Encoded({"Content-Type": STRUCTURED}, dumps(built), _retry(idempotent))
    headers = binary_headers(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": event,
            "time": time,
            "partitionkey": partition_key,
        }
    )
    if data is not None:
        headers["Content-Type"] = data_content_type
    return Encoded(headers, encode_data(data, data_content_type), _retry(idempotent))


def _retry(idempotent: bool, *, carries_id: bool = True) -> Retry:
    if not idempotent:
        return "unsent"
    if not carries_id:
        raise ValueError(
            "idempotent=True needs an event id the gateway can de-duplicate: legacy mode "
            "and a cloudevent= mapping without 'id' have none"
        )
    return "idempotent"


def encode_batch(events: Sequence[Mapping[str, Any]], *, idempotent: bool = False) -> Encoded:
    """A batch of events (mappings, sent as given).

    Raises:
        ValueError: ``idempotent`` while an event has no id.
    """
    if idempotent and not all(has_id(event) for event in events):
        raise ValueError("idempotent=True needs an id in every event of the batch")
    retry: Retry = "idempotent" if idempotent else "unsent"
    return Encoded({"Content-Type": BATCH}, dumps([dict(event) for event in events]), retry)
