"""A minimal function endpoint for benchmarks: raw ASGI on uvicorn (uvloop + httptools).

* ``POST /floor`` answers 202: the bare ASGI app the ingest figures are compared with.
* ``POST /sync`` answers a sync route's reply ``{"statusCode": 200, "body": "ok"}``.
* any other ``POST`` answers 200; when the body carries ``"bt":<ns>`` (the load generator's
  ``time.monotonic_ns()`` at send time — CLOCK_MONOTONIC, shared by every process of the
  machine) the arrival delay is recorded.
* ``GET /count`` returns how many POSTs arrived; ``GET /latency`` returns the delays
  recorded since the last call (nanoseconds, space-separated) and forgets them.

Run: ``python -m bench.receiver PORT``
"""

from __future__ import annotations

import sys
import time
from typing import Any

import uvicorn

_MARK = b'"bt":'
_SYNC_REPLY = b'{"statusCode":200,"body":"ok"}'
_count = 0
_delays_ns: list[int] = []


def record_delay(body: bytes, arrived_ns: int) -> int | None:
    """``arrived_ns`` less the ``"bt":<ns>`` the body carries, if it carries one."""
    start = body.find(_MARK)
    if start < 0:
        return None
    start += len(_MARK)
    end = start
    while end < len(body) and 48 <= body[end] <= 57:
        end += 1
    return arrived_ns - int(body[start:end]) if end > start else None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _count
    if scope["type"] != "http":
        return
    message = await receive()
    arrived_ns = time.monotonic_ns()
    body = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    path = scope["path"]
    status = 200
    reply = b""
    if scope["method"] == "POST":
        _count += 1
        if path == "/floor":
            status = 202
        elif path == "/sync":
            reply = _SYNC_REPLY
        else:
            delay = record_delay(body, arrived_ns)
            if delay is not None:
                _delays_ns.append(delay)
    elif path == "/latency":
        reply = " ".join(map(str, _delays_ns)).encode()
        _delays_ns.clear()
    else:
        reply = str(_count).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(reply)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": reply})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
