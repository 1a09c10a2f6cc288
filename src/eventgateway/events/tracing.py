"""W3C Trace Context through the gateway (the CloudEvents Distributed Tracing extension).

A producer instrumented with OpenTelemetry (or anything speaking W3C Trace Context) sends
``traceparent`` and maybe ``tracestate`` headers with its emit. The gateway stores them
on each event the request carries as the extension attributes of the same names — unless
the event brings its own, which win, as the extension's spec says the attributes describe
where the event was made — and every delivery of the event sends them on as headers, so
the function's span continues the producer's trace across the durable hop.

Only well-formed values travel: a malformed header is ignored, not an error (tracing must
never cost an event), and a malformed attribute is never turned into a header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from eventgateway.events.model import CloudEvent

__all__ = ["MAX_TRACESTATE_CHARS", "stamp_trace", "trace_headers"]

# version-traceid-parentid-flags, lower-case hex; version ff and all-zero ids are invalid.
# Version 00 is exactly that. A later version is read by those four fields and may go on
# after a dash (W3C Trace Context §3.2.4, "Versioning of traceparent"); the gateway makes
# no span, so it passes such a value on as it came. What may follow is kept to hex and
# dashes, 256 characters in all: it becomes a header.
_TRACEPARENT: Final = re.compile(
    r"(?:00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2})"
    r"|(?:(?!00|ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
    r"(?:-[0-9a-f-]{0,200})?)"
)
# The spec allows 32 list members of up to 256 characters each; 512 is its advice for
# what a propagator must at least pass on. Printable ASCII only: it becomes a header.
MAX_TRACESTATE_CHARS: Final = 512
_TRACESTATE: Final = re.compile(r"[\x20-\x7e]{1,512}")


def _valid_parent(value: object) -> bool:
    return type(value) is str and _TRACEPARENT.fullmatch(value) is not None


def _valid_state(value: object) -> bool:
    return type(value) is str and _TRACESTATE.fullmatch(value) is not None


def stamp_trace(events: Iterable[CloudEvent], first: Mapping[bytes, bytes]) -> None:
    """Give each event the request's trace context, if it has none of its own.

    Args:
        events: the events parsed from one request.
        first: the request's headers, lower-case names, the first value of each.
    """
    raw = first.get(b"traceparent")
    if raw is None:
        return
    parent = raw.strip(b" \t").decode("latin-1")
    if not _valid_parent(parent):
        return
    raw_state = first.get(b"tracestate")
    state = raw_state.strip(b" \t").decode("latin-1") if raw_state is not None else None
    if not _valid_state(state):
        state = None
    for event in events:
        extensions = event.extensions
        if "traceparent" in extensions:
            continue
        extensions["traceparent"] = parent
        if state is not None and "tracestate" not in extensions:
            extensions["tracestate"] = state


def trace_headers(event: CloudEvent) -> list[tuple[str, str]]:
    """The ``traceparent`` (and ``tracestate``) headers a delivery of ``event`` carries."""
    extensions = event.extensions
    parent = extensions.get("traceparent")
    if parent is None or not _valid_parent(parent):
        return []
    state = extensions.get("tracestate")
    if state is not None and _valid_state(state):
        return [("traceparent", parent), ("tracestate", state)]
    return [("traceparent", parent)]
