"""HTTP binding in: how one Events API request becomes CloudEvents (contract §2.2–§2.4).

The first matching rule wins:

A. structured: media type ``application/cloudevents+json`` (0.1, or 1.0 when the object has
   ``specversion``; the emit shorthand ``{"event", "data"}`` becomes a 1.0 event), or
   ``application/cloudevents-batch+json`` (a JSON array of 1.0 events);
B. binary: a ``ce-specversion`` header (1.0), else all four 0.1 ``CE-*`` headers non-empty;
C. legacy: a non-empty ``Event`` header. An ``application/json`` body that is itself a valid
   structured CloudEvent is used as is (its own type wins over the header); otherwise a
   transformed event of that type wraps the normalised body;
D. anything else becomes a transformed ``http.request`` event wrapping the whole request.
   A structured CloudEvent sent as ``application/json`` without an ``Event`` header lands
   here too, as in the original.

Decisions (see also ``events/body.py``, ``events/binary.py``, ``events/structured.py``):

* bodies are normalised by the parsed media type everywhere (the original used the raw
  Content-Type in binary and ``http.request`` modes, so ``application/json;
  charset=utf-8`` arrived base64 encoded);
* the legacy rule tries the body as a structured event of either version;
* ``http.request`` headers exclude ``Host`` and ``Transfer-Encoding`` (Go's server moves
  both out of the header map), and keep the order the client sent them in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import msgspec

from eventgateway.errors import EventParseError
from eventgateway.events.binary import V01_BINARY_HEADERS, parse_binary_v01, parse_binary_v1
from eventgateway.events.body import is_json_media_type, normalize_body
from eventgateway.events.headers import canonical_header_name, header_text
from eventgateway.events.jsondepth import DEFAULT_MAX_JSON_DEPTH, json_depth_exceeds
from eventgateway.events.model import HTTP_REQUEST_TYPE, CloudEvent, transformed_event
from eventgateway.events.structured import DEFAULT_MAX_BATCH_EVENTS, parse_batch, parse_structured
from eventgateway.events.tracing import stamp_trace
from eventgateway.events.validate import MediaTypeError, media_type

__all__ = [
    "BATCH_MEDIA_TYPE",
    "STRUCTURED_MEDIA_TYPE",
    "HttpRequest",
    "authorizer_request",
    "http_request_data",
    "parse_request",
]

STRUCTURED_MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
_OCTET_STREAM = "application/octet-stream"
_JSON = "application/json"
# Go's server takes these out of Request.Header, so the original never showed them.
_HIDDEN_HEADERS = frozenset((b"host", b"transfer-encoding"))


class HttpRequest(msgspec.Struct, frozen=True):  # one per request: a Struct (queue/base.py)
    """One Events API request, as much of it as event parsing needs.

    Attributes:
        method: the request method, e.g. ``POST``.
        raw_path: the escaped path as sent, without the query (routing uses this).
        path: the percent-decoded path (goes into ``http.request`` ``data.path``).
        query_string: the raw query string, without ``?``.
        headers: ASGI style: lower-case names, raw values, in the order received.
        body: the whole body.
        host: the Host header value (with ``:port`` if sent), ``""`` if none.
    """

    method: str
    raw_path: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    host: str


def parse_request(
    req: HttpRequest,
    *,
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
) -> list[CloudEvent]:
    """Turn a request into CloudEvents: one, or one per entry of a batch (possibly none).

    A batch comes back as a :class:`~eventgateway.events.structured.Batch`, whatever the
    case of its media type, so callers need not look at the Content-Type again.

    A W3C ``traceparent`` (and ``tracestate``) header becomes the trace extension of each
    event that has none of its own (``events/tracing.py``).

    Args:
        req: the request.
        max_json_depth: how deeply a body with a JSON media type (structured, batch, or
            JSON data) may nest arrays and objects.
        max_batch_events: the most events a batch may hold.

    Raises:
        EventParseError: the request is not a valid event, or its JSON nests too deeply;
            ``message`` is the 400 text and names the failing attribute, header, batch
            entry or limit.
        PayloadTooLargeError: a batch holds more than ``max_batch_events`` events (413).
    """
    # Go's Header.Get sees the first value of a repeated header: reversing lets it win.
    first = dict(reversed(req.headers))
    events = _parse(req, first, max_json_depth, max_batch_events)
    if b"traceparent" in first:
        stamp_trace(events, first)
    return events


def _parse(
    req: HttpRequest, first: dict[bytes, bytes], max_json_depth: int, max_batch_events: int
) -> list[CloudEvent]:
    raw_content_type = first.get(b"content-type")
    content_type = header_text(raw_content_type) if raw_content_type is not None else None
    mtype = _media_type_or_400(content_type) if content_type else _OCTET_STREAM
    # Only bodies of a JSON media type are ever decoded (structured and batch types are
    # "+json" too); everything else is carried as bytes, however it nests.
    if is_json_media_type(mtype) and json_depth_exceeds(req.body, max_json_depth):
        raise EventParseError(
            f"JSON body is nested too deeply: the limit is {max_json_depth} levels of "
            "arrays and objects"
        )

    if mtype == STRUCTURED_MEDIA_TYPE:
        return [parse_structured(req.body, shorthand=True)]
    if mtype == BATCH_MEDIA_TYPE:
        return parse_batch(req.body, max_events=max_batch_events)
    if b"ce-specversion" in first:
        return [parse_binary_v1(req.headers, content_type, mtype, req.body)]
    if all(first.get(name) for name in V01_BINARY_HEADERS):
        return [parse_binary_v01(req.headers, first, content_type, mtype, req.body)]
    legacy_type = first.get(b"event")
    if legacy_type:
        if mtype == _JSON:
            try:
                return [parse_structured(req.body)]
            except EventParseError:
                pass  # not a CloudEvent: wrap the body like any other legacy request
        data = normalize_body(req.body, mtype)
        return [transformed_event(header_text(legacy_type), mtype, data)]
    data = _request_object(req, normalize_body(req.body, mtype))
    return [transformed_event(HTTP_REQUEST_TYPE, _JSON, data)]


def _media_type_or_400(content_type: str) -> str:
    try:
        return media_type(content_type)
    except MediaTypeError as exc:
        raise EventParseError(f"invalid Content-Type header {content_type!r}: {exc}") from None


def _headers_and_query(req: HttpRequest) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Go's flattened header map and ``URL.Query()``, built in one pass over the headers."""
    headers: dict[str, str] = {}
    for name, value in req.headers:
        if name in _HIDDEN_HEADERS:
            continue
        key = canonical_header_name(name)
        text = header_text(value)
        previous = headers.get(key)
        headers[key] = text if previous is None else previous + ", " + text
    query: dict[str, list[str]] = {}
    if req.query_string:
        query = parse_qs(
            req.query_string.decode("utf-8", "replace"), keep_blank_values=True, errors="replace"
        )
    return headers, query


def http_request_data(req: HttpRequest) -> dict[str, Any]:
    """Build the ``data`` object of an ``http.request`` event (contract §2.4).

    Keys, in order: ``headers`` (Go canonical names, repeated headers joined with ``", "``,
    no ``Host``), ``query`` (name → list of values, ``{}`` without a query), ``body``
    (normalised by the Content-Type's media type, §2.3), ``host``, ``path`` (decoded),
    ``method`` and ``params`` (``None``; a sync route match sets it).
    """
    content_type = next((header_text(v) for n, v in req.headers if n == b"content-type"), "")
    return _request_object(req, normalize_body(req.body, _media_type_lenient(content_type)))


def _media_type_lenient(content_type: str) -> str:
    # Called outside parse_request, the Content-Type may never have been checked; judging
    # the body must not fail, so an unparsable value falls back to its bare type.
    try:
        return media_type(content_type) if content_type else ""
    except MediaTypeError:
        return content_type.partition(";")[0].strip().lower()


def _request_object(req: HttpRequest, body: Any) -> dict[str, Any]:
    headers, query = _headers_and_query(req)
    return {
        "headers": headers,
        "query": query,
        "body": body,
        "host": req.host,
        "path": req.path,
        "method": req.method,
        "params": None,
    }


def authorizer_request(req: HttpRequest) -> dict[str, Any]:
    """Build the ``request`` object sent to authorizer functions (contract §4.6).

    Same shape as :func:`http_request_data`, but ``body`` and ``params`` are always ``None``
    (the original never filled them, whatever its docs said).
    """
    return _request_object(req, None)
