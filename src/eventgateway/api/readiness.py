"""``GET /v1/ready``: whether this instance can do its work now (a readiness probe).

``GET /v1/status`` is the liveness probe: the process answers, so there is no reason to
restart it. ``/v1/ready`` is for the load balancer in front of several instances: 200
``{"ready": true, "reasons": []}``, or 503 ``{"ready": false, "reasons": [...]}`` with
one sentence per problem, while the instance would answer events with 503 or accept them
without delivering them:

* it is draining (a shutdown signal came);
* a NATS connection it needs is down (cluster mode: it reconnects by itself; a client
  closed for good stops the instance instead, ``eventgateway/fatal.py``);
* its SQLite queue file was found damaged by a write (``queue/sqlite_health.py``);
* its delivery worker is not linked (``--dispatch worker``: the worker is starting, or
  restarting after a crash).

Each check is a plain function that returns ``None`` when all is well, so the probe costs
no I/O and cannot hang.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Check", "readiness_endpoint"]

Check = Callable[[], str | None]
"""One readiness check: ``None`` when ready, else why not, as a sentence."""

_encoder = msgspec.json.Encoder()


def readiness_endpoint(checks: Sequence[Check]) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /v1/ready`` handler over ``checks``, run in order on every request."""

    async def ready(request: Request) -> Response:  # async: starlette runs a sync one in a thread
        del request
        reasons = [reason for check in checks if (reason := check()) is not None]
        body = _encoder.encode({"ready": not reasons, "reasons": reasons}) + b"\n"
        return Response(
            body,
            status_code=503 if reasons else 200,
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    return ready
