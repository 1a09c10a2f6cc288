"""Throughput probe for the SQLite delivery queue (not a test).

Prints accepted events/s for N concurrent ``accept()`` callers (one ~500-byte event with
one delivery per call; every call waits for its commit, as the Events API does), and
leased+acked deliveries/s, both serially (lease 100, ack them, repeat) and shaped like the
dispatcher (keep leasing while up to 256 acks are outstanding).

    .venv/bin/python bench/queue_probe.py [--seconds 3] [--synchronous FULL] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import pathlib
import tempfile
import time

import msgspec

from eventgateway.events.model import CloudEvent
from eventgateway.queue.base import Accepted, AttemptRecord, Delivery, NewDelivery
from eventgateway.queue.sqlite import SqliteQueue

_DATA = msgspec.Raw(msgspec.json.encode({"user": {"id": "u" * 16, "name": "n" * 300}}))
_DELIVERY = [NewDelivery("acme", "s1", "f1")]
_ATTEMPT = AttemptRecord(started_at=0.0, duration_s=0.001, outcome="delivered", status=200)


def _event(n: int) -> CloudEvent:
    return CloudEvent("1.0", f"ev-{n}", "probe", "user.created", data=_DATA)


async def probe_accept(path: pathlib.Path, callers: int, seconds: float, sync: str) -> float:
    queue = SqliteQueue(path, synchronous=sync, max_deliveries=10_000_000, max_bytes=1 << 40)
    await queue.open()
    numbers = itertools.count()
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await queue.accept([Accepted(_event(next(numbers)), _DELIVERY)])
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    stats = queue.stats()
    await queue.close()
    print(
        f"accept, {callers:3d} callers, synchronous={sync}: {done / elapsed:9,.0f} events/s "
        f"({stats['transactions']:,} transactions, max batch {stats['max_batch']})"
    )
    return done / elapsed


async def _filled(path: pathlib.Path, rows: int, sync: str) -> SqliteQueue:
    queue = SqliteQueue(path, synchronous=sync, max_deliveries=10_000_000, max_bytes=1 << 40)
    await queue.open()
    batch = [Accepted(_event(n), _DELIVERY) for n in range(rows)]
    for start in range(0, rows, 1000):
        await queue.accept(batch[start : start + 1000])
    return queue


async def probe_lease_ack(path: pathlib.Path, rows: int, sync: str) -> float:
    """Serial: lease 100, ack all 100 concurrently, wait, lease again."""
    queue = await _filled(path, rows, sync)
    before = queue.stats()["transactions"]
    settled = 0
    started = time.perf_counter()
    while settled < rows:
        leased = await queue.lease(100)
        await asyncio.gather(*(queue.ack(d, _ATTEMPT) for d in leased))
        settled += len(leased)
    elapsed = time.perf_counter() - started
    transactions = queue.stats()["transactions"] - before
    await queue.close()
    print(
        f"lease(100) then ack each, serial, synchronous={sync}: "
        f"{settled / elapsed:9,.0f} deliveries/s ({transactions:,} transactions)"
    )
    return settled / elapsed


async def probe_pipelined(path: pathlib.Path, rows: int, sync: str, in_flight: int) -> float:
    """Dispatcher-shaped: keep leasing while up to ``in_flight`` acks are outstanding."""
    queue = await _filled(path, rows, sync)
    before = queue.stats()["transactions"]
    slots = asyncio.Semaphore(in_flight)
    leased_total = 0

    async def settle(delivery: Delivery) -> None:
        try:
            await queue.ack(delivery, _ATTEMPT)
        finally:
            slots.release()

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        while leased_total < rows:
            await slots.acquire()
            slots.release()
            for delivery in await queue.lease(100):
                await slots.acquire()
                group.create_task(settle(delivery))
                leased_total += 1
    elapsed = time.perf_counter() - started
    transactions = queue.stats()["transactions"] - before
    await queue.close()
    print(
        f"lease(100) + acks, {in_flight} in flight, synchronous={sync}: "
        f"{leased_total / elapsed:9,.0f} deliveries/s ({transactions:,} transactions)"
    )
    return leased_total / elapsed


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for callers in args.callers:
            await probe_accept(root / f"accept-{callers}.db", callers, args.seconds, args.sync)
        await probe_lease_ack(root / "lease.db", args.rows, args.sync)
        await probe_pipelined(root / "pipelined.db", args.rows, args.sync, 256)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per accept case")
    parser.add_argument("--rows", type=int, default=50_000, help="deliveries to lease and ack")
    parser.add_argument("--synchronous", dest="sync", default="FULL")
    parser.add_argument(
        "--callers", type=int, nargs="+", default=[1, 64], help="accept cases to run"
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    options = parser.parse_args()
    if options.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(options))
