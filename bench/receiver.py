"""A minimal function endpoint for benchmarks: raw ASGI on uvicorn, answers 200, counts.

``GET /count`` returns how many POSTs it received. Run: python -m bench.receiver PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

_count = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _count
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        _count += 1
        body = b""
        status = 200 if scope["path"] != "/floor" else 202
    else:
        body = str(_count).encode()
        status = 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
