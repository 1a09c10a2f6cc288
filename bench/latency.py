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
# The headline rate is measured this many times (the sweep's run and the repeats after
# it); the figure is the median of each percentile: one disk stall in a 10 s run moves a
# p99 of 9,500 samples, and a shared host has them.
HEADLINE_ROUNDS = 3
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


def through_gateway(
    ctx: Context, receiver: Receiver, *store: str, repeats: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rate sweep through one gateway, then ``repeats`` more runs at the headline rate;
    ``store``: extra ``eg serve`` arguments."""
    points, again = [], []
    gw = start_gateway(ctx.owner, ctx.cores, *store)
    try:
        gw.function("f", receiver.url + "/f")
        gw.subscribe("f", "/bench")
        for rate in QUICK_RATES if ctx.quick else RATES:
            points.append(_one(ctx, receiver, f"{gw.events_url}/bench", rate))
        for _ in range(repeats):
            again.append(_one(ctx, receiver, f"{gw.events_url}/bench", HEADLINE_RATE))
    finally:
        stop_gateway(ctx.owner, gw)
    return points, again


def measure(ctx: Context) -> dict[str, Any]:
    rates = QUICK_RATES if ctx.quick else RATES
    repeats = 0 if ctx.quick else HEADLINE_ROUNDS - 1
    receiver = start_receiver(ctx.owner, ctx.cores.load)
    floor_points = []
    try:
        gateway_points, gateway_again = through_gateway(ctx, receiver, repeats=repeats)
        for rate in rates:
            floor_points.append(_one(ctx, receiver, receiver.url + "/f", rate))
        floor_again = [
            _one(ctx, receiver, receiver.url + "/f", HEADLINE_RATE) for _ in range(repeats)
        ]
    finally:
        ctx.owner.stop(receiver.proc)
    results = {
        "sqlite": gateway_points,
        "floor": floor_points,
        # Every run at the headline rate: the sweep's first, then the repeats.
        "headline": {
            "sqlite": [p for p in gateway_points if p["offered_rate"] == HEADLINE_RATE]
            + gateway_again,
            "floor": [p for p in floor_points if p["offered_rate"] == HEADLINE_RATE] + floor_again,
        },
    }
    ctx.note("latency", **results)
    return results


def median_of(rounds: list[dict[str, Any]], q: str) -> float | None:
    """The median over ``rounds`` of one percentile of emit → delivery."""
    values = sorted(r["emit_to_delivery_ms"][q] for r in rounds if q in r["emit_to_delivery_ms"])
    return values[len(values) // 2] if values else None


def at_rate(points: list[dict[str, Any]], rate: float) -> dict[str, float]:
    for point in points:
        if point["offered_rate"] == rate:
            found: dict[str, float] = point["emit_to_delivery_ms"]
            return found
    return {}
