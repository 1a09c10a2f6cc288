"""The NATS JetStream floor: a bare nats-py client publishing to a local JetStream.

Cluster mode (the gateway on NATS) does not exist yet, so only the floor its rows will be
compared with is measured: ~500-byte messages published to a file-backed stream on
127.0.0.1:4222 (``EG_BENCH_NATS_URL``), acknowledged by the server,

* saturated: 64 publishing tasks for the run's duration (msgs/s, ack p50/p99);
* at 1,000 msgs/s on a fixed schedule: publish→ack p50/p99.

The stream is created for the run and deleted after. Prints one JSON object.
Run: ``python -m bench.natsfloor [--seconds 5] [--rate 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

PAYLOAD = b"x" * 500
TASKS = 64


def _pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}


async def _saturated(js: Any, subject: str, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def publisher() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await js.publish(subject, PAYLOAD)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(TASKS)))
    elapsed = time.perf_counter() - started
    return {"msgs_per_s": len(latencies) / elapsed, "ack_ms": _pct(latencies), "tasks": TASKS}


async def _paced(js: Any, subject: str, rate: float, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    total = max(1, int(rate * seconds))
    start = time.perf_counter()

    async def one() -> None:
        started = time.perf_counter()
        await js.publish(subject, PAYLOAD)
        latencies.append((time.perf_counter() - started) * 1000)

    async with asyncio.TaskGroup() as group:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the fixed schedule of an open-loop load
            group.create_task(one())
    return {"rate": rate, "ack_ms": _pct(latencies)}


async def measure(url: str, seconds: float, rate: float) -> dict[str, Any]:
    import nats

    client = await asyncio.wait_for(nats.connect(url, allow_reconnect=False), 5)
    js = client.jetstream()
    stream = f"EGBENCH{os.getpid()}"
    subject = f"egbench.{os.getpid()}"
    try:
        await js.add_stream(name=stream, subjects=[subject], storage="file", max_msgs=1_000_000)
        saturated = await _saturated(js, subject, seconds)
        paced = await _paced(js, subject, rate, seconds)
    finally:
        try:
            await js.delete_stream(stream)
        finally:
            await client.close()
    return {"url": url, "saturated": saturated, "paced": paced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument(
        "--url", default=os.environ.get("EG_BENCH_NATS_URL", "nats://127.0.0.1:4222")
    )
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(measure(args.url, args.seconds, args.rate))
    except Exception as exc:  # any failure becomes the row's reason, not a crash
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
