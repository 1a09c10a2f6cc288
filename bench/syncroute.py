"""Latency a sync ``http.request`` route adds, at a fixed 1,000 requests/s.

The function is the receiver's ``POST /sync``, answering ``{"statusCode": 200, "body": "ok"}``.
``bench.loadgen`` sends the same open-loop schedule through the gateway (a sync subscription on
``POST /bench/sync``) and straight to the function (the floor); the added latency is the
difference of the percentiles.
"""

from __future__ import annotations

from typing import Any

from bench.procs import start_gateway, start_receiver, stop_gateway
from bench.runner import Context, loadgen

RATE = 1000
QUICK_RATE = 200
CONNECTIONS = 32


def measure(ctx: Context) -> dict[str, Any]:
    rate = QUICK_RATE if ctx.quick else RATE
    receiver = start_receiver(ctx.owner, ctx.cores.load)
    try:
        gw = start_gateway(ctx.owner, ctx.cores)
        try:
            gw.function("s", receiver.url + "/sync")
            gw.event_type("http.request")
            gw.subscribe("s", "/bench/sync", type="sync", eventType="http.request", method="POST")
            through = loadgen(
                ctx,
                f"{gw.events_url}/bench/sync",
                rate=rate,
                seconds=ctx.seconds,
                connections=CONNECTIONS,
                body="plain",
            )
        finally:
            stop_gateway(ctx.owner, gw)
        direct = loadgen(
            ctx,
            receiver.url + "/sync",
            rate=rate,
            seconds=ctx.seconds,
            connections=CONNECTIONS,
            body="plain",
        )
    finally:
        ctx.owner.stop(receiver.proc)
    added = {
        q: through["latency_ms"][q] - direct["latency_ms"][q]
        for q in ("p50", "p90", "p99")
        if q in through["latency_ms"] and q in direct["latency_ms"]
    }
    results = {"rate": rate, "gateway": through, "direct": direct, "added_ms": added}
    ctx.note("sync", **results)
    return results
