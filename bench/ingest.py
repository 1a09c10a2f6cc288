"""Ingest throughput of ``eg serve`` beside a bare ASGI floor, and the generators' ceiling.

* floor: the bare ASGI app of ``bench/receiver.py`` answering 202, driven like the gateway;
* at-least-once and at-most-once: a gateway (SQLite, ``--dispatch worker``) with one async
  subscription to a receiver, driven by ``wrk -t1 -c64`` (or ``bench.loadgen``) posting unique
  ~500-byte CloudEvents; accepted = 2xx answers per second; deliveries are counted during the
  run and after a bounded drain;
* ceiling: each generator against ``bench/canned.py``, the cheapest server we can write.

Run alone: ``python -m bench.ingest [--seconds 10] [--quick]`` (``python -m bench`` runs it
with every other figure).
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from bench import profiling
from bench.procs import HOST, free_port, start_gateway, start_receiver, stop_gateway, wait_http
from bench.runner import Context, drain, loadgen, saturate, wrk

CONNECTIONS = 64


def floor(ctx: Context, path: str = "/floor") -> dict[str, Any]:
    """The receiver alone on the server core, driven at saturation."""
    receiver = start_receiver(ctx.owner, ctx.cores.server, "floor-receiver")
    try:
        return saturate(ctx, receiver.url + path, ctx.seconds, CONNECTIONS)
    finally:
        ctx.owner.stop(receiver.proc)


def gateway(ctx: Context, delivery: str, dispatch: str = "worker", *store: str) -> dict[str, Any]:
    """``store``: extra ``eg serve`` arguments choosing the store (``--store nats://…``)."""
    receiver = start_receiver(ctx.owner, ctx.cores.load)
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


def measure(ctx: Context) -> dict[str, Any]:
    results = {
        "floor": floor(ctx),
        "at-least-once": gateway(ctx, "at-least-once"),
        "at-most-once": gateway(ctx, "at-most-once"),
    }
    ctx.note("ingest", **results)
    return results


def main() -> None:
    from bench.__main__ import main as bench_main

    args = sys.argv[1:]
    sys.argv = [sys.argv[0], "--only", "ingest", "--only", "generators", *args]
    bench_main()


if __name__ == "__main__":
    main()
