"""Memory of ``eg serve`` idle and with a backlog; the local runtime's warm and cold calls.

Memory: the RSS of the ``eg serve`` process tree (the HTTP process and its delivery worker,
VmRSS from /proc summed) once started and configured, then after 100,000 events were
accepted for a subscriber that is "paused": its URL is a socket that listens but never
accepts, so deliveries hang until their timeout and the backlog stays in the queue.

Runtime: ``bench/runtime_probe.py`` (a no-op Python handler) in its own process.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

from bench.procs import HOST, start_gateway, stop_gateway
from bench.runner import Context, loadgen, run_captured

BACKLOG = 100_000
QUICK_BACKLOG = 5_000
BATCH = 100


def memory(ctx: Context) -> dict[str, Any]:
    backlog = QUICK_BACKLOG if ctx.quick else BACKLOG
    with socket.socket() as paused:
        paused.bind((HOST, 0))
        paused.listen(1024)  # never accepted: a subscriber that does not answer
        gw = start_gateway(ctx.owner, ctx.cores)
        try:
            gw.function("f", f"http://{HOST}:{paused.getsockname()[1]}/f")
            gw.subscribe("f", "/bench")
            time.sleep(0.5 if ctx.quick else 2.0)  # let start-up work finish before reading
            idle = gw.rss()
            idle_by_process = gw.rss_by_process_mb()
            fill = loadgen(
                ctx,
                f"{gw.events_url}/bench",
                requests=backlog // BATCH,
                connections=8,
                body="batch",
                batch=BATCH,
            )
            time.sleep(0.5 if ctx.quick else 2.0)  # let the gateway settle after the load
            loaded = gw.rss()
            loaded_by_process = gw.rss_by_process_mb()
        finally:
            paused.close()  # resets the hung calls, so the gateway stops without waiting
            stop_gateway(ctx.owner, gw)
    results = {
        "idle_mb": idle / 2**20,
        "backlog_mb": loaded / 2**20,
        "idle_by_process_mb": idle_by_process,
        "backlog_by_process_mb": loaded_by_process,
        "backlog_events": fill["ok"] * BATCH,
        "fill_events_per_s": fill["ok"] * BATCH / fill["elapsed_s"],
        "fill_statuses": fill["statuses"],
    }
    ctx.note("memory", **results)
    return results


def runtime(ctx: Context) -> dict[str, Any]:
    calls, cold = (100, 3) if ctx.quick else (2000, 20)
    args = [sys.executable, "-m", "bench.runtime_probe", "--uvloop", "--json"]
    out = run_captured([*args, "--calls", str(calls), "--cold", str(cold)], None, 300)
    results: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    ctx.note("runtime", **results)
    return results
