"""Emit→delivery latency against offered rate, durable (SQLite), beside a direct POST.

``bench.loadgen`` sends at a fixed schedule (open loop) and writes ``time.monotonic_ns()``
into each event as it leaves; the receiver records its arrival. For each rate, the same
schedule is sent once through a gateway (one at-least-once subscription, SQLite,
``--dispatch worker``) and once straight to the receiver (the floor). The first 5 % of
samples (warm-up) are dropped.
"""

from __future__ import annotations

from typing import Any

from bench.procs import Receiver, start_gateway, start_receiver, stop_gateway
from bench.runner import Context, drain, loadgen

RATES = (250, 500, 1000, 2000, 4000)
QUICK_RATES = (250, 1000)
HEADLINE_RATE = 1000
CONNECTIONS = 32


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {}
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1], "n": len(ordered)}


def _one(ctx: Context, receiver: Receiver, url: str, rate: float) -> dict[str, Any]:
    receiver.latencies_ms()  # forget anything recorded before
    before = receiver.count()
    sent = loadgen(ctx, url, rate=rate, seconds=ctx.seconds, connections=CONNECTIONS)
    arrived = drain(receiver, before + sent["ok"], 10.0) - before
    samples = receiver.latencies_ms()
    kept = samples[len(samples) // 20 :]
    return {
        "offered_rate": rate,
        "sent": sent["sent"],
        "accepted": sent["ok"],
        "delivered": arrived,
        "emit_to_delivery_ms": percentiles(kept),
        "response_ms": sent["latency_ms"],
        "send_lag_ms": sent["lag_ms"],
    }


def through_gateway(ctx: Context, receiver: Receiver, *store: str) -> list[dict[str, Any]]:
    """The rate sweep through one gateway; ``store``: extra ``eg serve`` arguments."""
    points = []
    gw = start_gateway(ctx.owner, ctx.cores, *store)
    try:
        gw.function("f", receiver.url + "/f")
        gw.subscribe("f", "/bench")
        for rate in QUICK_RATES if ctx.quick else RATES:
            points.append(_one(ctx, receiver, f"{gw.events_url}/bench", rate))
    finally:
        stop_gateway(ctx.owner, gw)
    return points


def measure(ctx: Context) -> dict[str, Any]:
    rates = QUICK_RATES if ctx.quick else RATES
    receiver = start_receiver(ctx.owner, ctx.cores.load)
    floor_points = []
    try:
        gateway_points = through_gateway(ctx, receiver)
        for rate in rates:
            floor_points.append(_one(ctx, receiver, receiver.url + "/f", rate))
    finally:
        ctx.owner.stop(receiver.proc)
    results = {"sqlite": gateway_points, "floor": floor_points}
    ctx.note("latency", **results)
    return results


def at_rate(points: list[dict[str, Any]], rate: float) -> dict[str, float]:
    for point in points:
        if point["offered_rate"] == rate:
            found: dict[str, float] = point["emit_to_delivery_ms"]
            return found
    return {}
