"""What an event is, and how HTTP requests and JSON become events (pure, no I/O).

The names most callers need are re-exported here; the modules hold the details.
"""

from __future__ import annotations

from eventgateway.events.codec import (
    decode_event,
    decode_json,
    encode_binary,
    encode_event,
    encode_json,
)
from eventgateway.events.http import (
    HttpRequest,
    authorizer_request,
    http_request_data,
    parse_request,
)
from eventgateway.events.model import SYSTEM_PREFIX, CloudEvent, transformed_event

__all__ = [
    "SYSTEM_PREFIX",
    "CloudEvent",
    "HttpRequest",
    "authorizer_request",
    "decode_event",
    "decode_json",
    "encode_binary",
    "encode_event",
    "encode_json",
    "http_request_data",
    "parse_request",
    "transformed_event",
]
