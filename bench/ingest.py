"""Ingest throughput of ``eg serve`` beside a bare ASGI floor, and the generators' ceiling.

* floor: the bare ASGI app of ``bench/receiver.py`` answering 202, driven like the gateway,
  right before each round of the gateway's runs (:func:`measure`: the median-ratio round);
* at-least-once and at-most-once: a gateway (SQLite, ``--dispatch worker``) with one async
  subscription to ``bench/sink.py`` (the ladders' function: the function's own cost is not the
  gateway's), driven by ``wrk -t1 -c64`` (or ``bench.loadgen``) posting ~500-byte CloudEvents
  with random ids; accepted = 2xx answers per second; deliveries are counted during the run
  and after a bounded drain;
* ceiling: each generator against ``bench/canned.py``, the cheapest server we can write.

Run alone: ``python -m bench.ingest [--seconds 10] [--quick]`` (``python -m bench`` runs it
with every other figure).
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from bench import profiling
from bench.procs import (
    HOST,
    SINK,
    free_port,
    start_gateway,
    start_receiver,
    stop_gateway,
    wait_http,
)
from bench.runner import Context, drain, loadgen, saturate, wrk

CONNECTIONS = 64


def floor(ctx: Context, path: str = "/floor", module: str = "bench.receiver") -> dict[str, Any]:
    """The receiver (``module``) alone on the server core, driven at saturation."""
    receiver = start_receiver(ctx.owner, ctx.cores.server, "floor-receiver", module)
    try:
        return saturate(ctx, receiver.url + path, ctx.seconds, CONNECTIONS)
    finally:
        ctx.owner.stop(receiver.proc)


def gateway(ctx: Context, delivery: str, dispatch: str = "worker", *store: str) -> dict[str, Any]:
    """``store``: extra ``eg serve`` arguments choosing the store (``--store nats://…``)."""
    receiver = start_receiver(ctx.owner, ctx.cores.load, module=SINK)
    gw = start_gateway(ctx.owner, ctx.cores, "--dispatch", dispatch, *store)
    try:
        gw.function("f", receiver.url + "/f")
        gw.subscribe("f", "/bench", delivery=delivery)
        name = f"ingest-{delivery}"
        spies = profiling.start(ctx, gw.proc.pid, ctx.seconds, name) if ctx.profile else []
        result = saturate(ctx, f"{gw.events_url}/bench", ctx.seconds, CONNECTIONS)
        if spies:
            result["profile_top"] = profiling.finish(ctx, spies, name)
        result["delivered_during"] = receiver.count()
        result["delivered_after_drain"] = drain(receiver, result["ok"], 5 if ctx.quick else 30)
        result["rss_mb_after"] = gw.rss() / 2**20
        return result
    finally:
        stop_gateway(ctx.owner, gw)
        ctx.owner.stop(receiver.proc)


def ceilings(ctx: Context) -> dict[str, Any]:
    """Each load generator against the canned server: the most it can offer here."""
    port = free_port()
    server = ctx.owner.spawn(
        [sys.executable, "-m", "bench.canned", str(port)], "canned", ctx.cores.server
    )
    url = f"http://{HOST}:{port}/"
    try:
        wait_http(url, proc=server)
        found: dict[str, Any] = {}
        if ctx.generator == "wrk" and shutil.which("wrk"):
            found["wrk"] = wrk(ctx, url, ctx.seconds, CONNECTIONS)
        found["asyncio"] = loadgen(ctx, url, seconds=ctx.seconds, connections=CONNECTIONS)
        return found
    finally:
        ctx.owner.stop(server)


ROUNDS = 3  # interleaved floor / gateway rounds (1 with --quick)


def measure(ctx: Context) -> dict[str, Any]:
    """``ROUNDS`` rounds of floor, at-least-once, at-most-once, each run right after its
    floor; per mode, the round with the median ratio to its own floor is the figure.

    A shared host's speed drifts over minutes (RESULTS.md records it); a floor measured
    once, minutes away from the run it divides, would carry that drift into the ratio.
    """
    rounds = 1 if ctx.quick else ROUNDS
    whole_s = ctx.seconds
    ctx.seconds = whole_s if ctx.quick else max(1.0, whole_s / 2)
    played: list[dict[str, Any]] = []
    try:
        for _ in range(rounds):
            bare = floor(ctx)
            played.append(
                {
                    "floor": bare,
                    "at-least-once": gateway(ctx, "at-least-once"),
                    "at-most-once": gateway(ctx, "at-most-once"),
                }
            )
    finally:
        ctx.seconds = whole_s
    results: dict[str, Any] = {"rounds": played}
    for mode in ("at-least-once", "at-most-once"):
        ranked = sorted(played, key=lambda r: r[mode]["ok_rps"] / r["floor"]["ok_rps"])
        median = ranked[len(ranked) // 2]
        results[mode] = {**median[mode], "floor_ok_rps": median["floor"]["ok_rps"]}
    results["floor"] = sorted(played, key=lambda r: r["floor"]["ok_rps"])[rounds // 2]["floor"]
    ctx.note("ingest", **results)
    return results


def main() -> None:
    from bench.__main__ import main as bench_main

    args = sys.argv[1:]
    sys.argv = [sys.argv[0], "--only", "ingest", "--only", "generators", *args]
    bench_main()


if __name__ == "__main__":
    main()
