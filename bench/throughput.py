"""Sustained end-to-end throughput: one subscriber, and fan-out 1 → 10, beside the receiver's max.

A ladder of offered rates (open loop, ``bench.loadgen``) through a gateway (SQLite,
at-least-once, ``--dispatch worker``) whose subscriptions all point at one receiver; the
one-subscriber ladder runs first, then the fan-out one on another path of the same gateway. A step
*keeps up* when the gateway accepted ≥ 97 % of what was offered and the receiver got ≥ 97 % of
the deliveries within one second of the load's end; the ladder stops at the first step that
does not. The figure is the deliveries/s of the highest step that kept up (or, when none did,
of the first step, marked as not kept up). The floor is the receiver's own maximum: the same
receiver driven directly at saturation.

The receiver here is ``bench/sink.py``, a bare uvloop protocol: all processes share the two
cores, so what the function spends per request is taken from the gateway. With the ASGI
receiver (``bench/receiver.py``, ~30 µs per request) the fan-out ladder measured the
receiver as much as the gateway (bench/README.md has both).
"""

from __future__ import annotations

from typing import Any

from bench import ingest
from bench.procs import (
    SINK,
    Cores,
    Gateway,
    Receiver,
    pin,
    start_gateway,
    start_receiver,
    stop_gateway,
)
from bench.runner import Context, drain, loadgen

RECEIVER = SINK
ONE_RATES = (1000, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 20000)
# events/s, ×10 deliveries; in steps of 250 up to 2,500 (the target is 20,000 deliveries/s)
FANOUT_RATES = (250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250, 2500, 3000, 4000)
QUICK_ONE_RATES = (500,)
QUICK_FANOUT_RATES = (100,)
KEPT_UP = 0.97


def ladder(
    ctx: Context, gw: Gateway, receiver: Receiver, fanout: int, rates: tuple[int, ...]
) -> dict[str, Any]:
    step_s = ctx.seconds if ctx.quick else max(2.0, ctx.seconds / 2)
    path = f"/bench/fanout{fanout}"
    for index in range(fanout):
        gw.function(f"f{fanout}-{index}", f"{receiver.url}/f{index}")
        gw.subscribe(f"f{fanout}-{index}", path)
    steps: list[dict[str, Any]] = []
    for rate in rates:
        before = receiver.count()
        sent = loadgen(ctx, gw.events_url + path, rate=rate, seconds=step_s)
        expected = sent["ok"] * fanout
        delivered = drain(receiver, before + expected, 1.0) - before
        kept_up = sent["ok"] >= KEPT_UP * rate * step_s and delivered >= KEPT_UP * expected
        steps.append(
            {
                "offered_events_per_s": rate,
                "accepted_per_s": sent["ok"] / sent["elapsed_s"],
                "deliveries_per_s": delivered / sent["elapsed_s"],
                "kept_up": kept_up,
                "response_ms": sent["latency_ms"],
            }
        )
        # Settle the tail (bounded) so the next step or ladder starts from an empty queue.
        drained = drain(receiver, before + expected, 5.0 if kept_up else 30.0)
        if not kept_up:
            break
    good = [step for step in steps if step["kept_up"]]
    best = max(good, key=lambda s: s["deliveries_per_s"]) if good else steps[0]
    return {
        "fanout": fanout,
        "steps": steps,
        "sustained": best,
        "kept_up": bool(good),
        "drained": drained >= before + expected,
    }


def measure(ctx: Context) -> dict[str, Any]:
    quick = ctx.quick
    results: dict[str, Any] = {"receiver": RECEIVER}
    fanout_cores = ctx.cores
    if fanout_cores.mode == "worker":
        ctx.cores = Cores("split")  # the floor: the receiver on a core, the generator beside
    results["receiver_max"] = ingest.floor(ctx, "/f", RECEIVER)
    # With the worker on a core of its own, the one-subscriber ladder runs unpinned: at
    # 20,000 events/s its HTTP process needs most of a core, beside the generator.
    one_cores = Cores("none") if fanout_cores.mode == "worker" else fanout_cores
    ctx.cores = one_cores
    receiver = start_receiver(ctx.owner, one_cores.load, module=RECEIVER)
    gw = start_gateway(ctx.owner, one_cores)
    try:
        results["one"] = ladder(ctx, gw, receiver, 1, QUICK_ONE_RATES if quick else ONE_RATES)
        if not results["one"]["drained"] or one_cores is not fanout_cores:
            # A fresh gateway for the fan-out: the first ladder left a backlog behind, or
            # the cores are shared another way.
            stop_gateway(ctx.owner, gw)
            ctx.cores = fanout_cores
            pin(receiver.proc.pid, fanout_cores.load)
            gw = start_gateway(ctx.owner, fanout_cores)
        fanout_rates = QUICK_FANOUT_RATES if quick else FANOUT_RATES
        results["fanout"] = ladder(ctx, gw, receiver, 10, fanout_rates)
        results["cores"] = (
            f"the one-subscriber ladder {one_cores.describe()}; "
            f"the fan-out ladder {fanout_cores.describe()}"
        )
    finally:
        ctx.cores = fanout_cores
        stop_gateway(ctx.owner, gw)
        ctx.owner.stop(receiver.proc)
    ctx.note("throughput", **results)
    return results
