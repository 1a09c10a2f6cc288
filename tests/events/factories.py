"""Builders shared by the events tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventgateway.events.http import HttpRequest


def request(
    headers: Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]] | None = None,
    body: bytes = b"",
    *,
    method: str = "POST",
    path: str = "/",
    query: bytes = b"",
    host: str = "localhost:4000",
) -> HttpRequest:
    """An Events API request with ASGI-style headers (names lower-cased, values as bytes).

    ``str`` values are sent as UTF-8; ``bytes`` values as they are.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    return HttpRequest(
        method=method,
        raw_path=path,
        path=path,
        query_string=query,
        headers=[
            (name.lower().encode(), value if isinstance(value, bytes) else value.encode())
            for name, value in pairs
        ],
        body=body,
        host=host,
    )


STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}
