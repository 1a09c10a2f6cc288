"""Cost of emit authorization and rate limiting on the Events API hot path (not a test).

Drives ``EventsApp`` directly (no sockets, no HTTP parsing) with a structured CloudEvent
that no subscription matches, so the figure is the gateway's own per-request work. Cases
are interleaved over several rounds and the median per-request time is reported:

* open mode (no authenticator, no rate limits) — the baseline;
* auth mode, public space — one dict lookup on top;
* auth mode, public space, with the default per-space rate limit;
* auth mode, private space with a key (SHA-256 + lookups + per-key bucket too).

Auth uses the gateway's real KeyRing with a few hundred claimed spaces.

It also times the guard calls alone with ``timeit``.

    .venv/bin/python -m bench.auth_probe [--requests 20000] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import timeit
from typing import Any

from eventgateway.api.emit_guard import (
    DEFAULT_KEY_RATE,
    DEFAULT_SPACE_RATE,
    EmitRateLimiter,
    authorize_emit,
    space_of,
)
from eventgateway.app import Gateway
from eventgateway.auth.spaces import SpaceAdmin
from eventgateway.settings import Settings
from eventgateway.store.memory import MemoryStore

_SPACES = 200
_BODY = json.dumps(
    {
        "specversion": "1.0",
        "id": "b3bd9de2-4e43-4b94-8d1b-53c1b1d6e2d1",
        "source": "/services/users",
        "type": "user.created",
        "datacontenttype": "application/json",
        "data": {"username": "tester", "email": "test@testcorp.com"},
    }
).encode()


def event_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of a structured-mode POST of the probe's event to ``path``."""
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:4000"),
            (b"content-type", b"application/cloudevents+json"),
            (b"content-length", str(len(_BODY)).encode()),
            *headers,
        ],
    }


async def receive_event() -> dict[str, Any]:
    """ASGI ``receive``: the probe's event, whole."""
    return {"type": "http.request", "body": _BODY, "more_body": False}


async def expect_202(message: dict[str, Any]) -> None:
    """ASGI ``send`` that fails the probe on any answer but 202."""
    if message["type"] == "http.response.start" and message["status"] != 202:
        raise RuntimeError(f"unexpected status {message['status']}")


async def per_request_us(app: Any, scope: dict[str, Any], requests: int) -> float:
    """Mean µs per request of ``app`` over ``requests`` sequential requests."""
    start = time.perf_counter()
    for _ in range(requests):
        await app(scope, receive_event, expect_202)
    return (time.perf_counter() - start) / requests * 1e6


async def _run(requests: int, rounds: int) -> dict[str, Any]:
    settings = Settings(store_url="memory://", dispatch="inline", auth=True, operator_key="o" * 32)
    gateway = Gateway(settings, store=MemoryStore())
    await gateway.start()
    app = gateway.events_app
    auth = gateway.keyring
    admin = SpaceAdmin(gateway.store, auth)
    for n in range(_SPACES):  # claimed public spaces: the dict the lookup goes through
        await admin.claim(f"space{n}")
    _, issued = await admin.claim("private", emit_requires_key=True)
    unlimited_clock_limiter = EmitRateLimiter(DEFAULT_SPACE_RATE, DEFAULT_KEY_RATE)
    # A frozen clock would run the bucket dry; a real one at this request rate would too
    # (the default is 1,000/s). Refill every call so each request takes the accept path.
    ticks = iter(range(10**12))
    unlimited_clock_limiter.clock = lambda: float(next(ticks))
    public = event_scope("/space7/users", [])
    private = event_scope("/private/users", [(b"x-api-key", issued.token.encode())])
    cases = {
        "open mode": (None, None, public),
        "auth, public space": (auth, None, public),
        "auth, public space, rate limited": (auth, unlimited_clock_limiter, public),
        "auth, private space with key, rate limited": (auth, unlimited_clock_limiter, private),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _ in range(rounds):
            for name, (authenticator, limiter, scope) in cases.items():
                app.authenticator, app.rate_limiter = authenticator, limiter
                samples[name].append(await per_request_us(app, scope, requests))
    finally:
        app.authenticator, app.rate_limiter = None, None
        await gateway.stop()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["open mode"]
    headers = {"host": "x", "content-type": "application/cloudevents+json"}
    loops = 200_000
    guard_public_ns = (
        timeit.timeit(
            lambda: authorize_emit(auth, space_of("/space7/users"), headers), number=loops
        )
        / loops
        * 1e9
    )
    limiter = EmitRateLimiter(DEFAULT_SPACE_RATE, DEFAULT_KEY_RATE)
    limiter.clock = unlimited_clock_limiter.clock
    limit_ns = timeit.timeit(lambda: limiter.check("space7", None, 1), number=loops) / loops * 1e9
    return {
        "per_request_us": {name: round(value, 2) for name, value in medians.items()},
        "added_us": {name: round(value - baseline, 2) for name, value in medians.items()},
        "guard_alone_ns": {
            "authorize_emit, public space": round(guard_public_ns),
            "rate limiter check, one space": round(limit_ns),
        },
    }


def main() -> None:
    """Run the probe and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(_run(args.requests, args.rounds))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, value in result["per_request_us"].items():
        print(f"{name:45s} {value:7.2f} µs/request  (+{result['added_us'][name]:.2f})")
    for name, value in result["guard_alone_ns"].items():
        print(f"{name:45s} {value:7d} ns")


if __name__ == "__main__":
    main()
