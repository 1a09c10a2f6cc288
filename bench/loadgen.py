"""An efficient asyncio HTTP/1.1 load generator: raw protocols on uvloop, httptools parsing.

Two shapes, both over keep-alive connections (no pipelining):

* **open loop** (``--rate R``): request *i* is due at ``start + i / R``, whatever the
  answers do (the schedule wrk2 would keep); a request finding every connection busy waits
  for the first one free, and how late each request left is reported (``lag``). Every event
  body carries ``"bt": time.monotonic_ns()`` taken as it is written to the socket, so the
  receiver can measure emit→delivery.
* **closed loop** (no ``--rate``): every connection sends its next request as soon as the
  previous one is answered — a saturating load, the fallback when ``wrk`` is missing.

Bodies: ``event`` (one ~500-byte CloudEvent with a random UUID-shaped id), ``batch``
(``--batch N`` events in one ``application/cloudevents-batch+json`` request) or ``plain`` (a
small JSON body, for a sync ``http.request`` route). Prints one JSON object with the counts
and latencies.

Run: ``python -m bench.loadgen URL [--rate R] [--seconds S | --requests N] [--connections C]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httptools
import uvloop

_PAD = "x" * 300
EVENT_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"


def random_id() -> str:
    """128 random bits shaped as a UUID: producers' ids (our SDKs send ``uuid4()``)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_json(stamp_ns: int) -> str:
    """A ~500-byte CloudEvents 1.0 event with a random id; ``bt`` is the emit time
    (monotonic ns)."""
    return (
        '{"specversion":"1.0","id":"' + random_id() + '","source":"/bench",'
        '"type":"bench.tick","datacontenttype":"application/json",'
        '"data":{"bt":' + str(stamp_ns) + ',"user":"ada","note":"' + _PAD + '"}}'
    )


def body_maker(kind: str, batch: int) -> tuple[str, Callable[[int], bytes]]:
    if kind == "event":
        return EVENT_TYPE, lambda seq: event_json(time.monotonic_ns()).encode()
    if kind == "batch":

        def many(seq: int) -> bytes:
            now = time.monotonic_ns()
            items = ",".join(event_json(now) for _ in range(batch))
            return ("[" + items + "]").encode()

        return BATCH_TYPE, many
    return "application/json", lambda seq: b'{"user":"ada","bt":' + str(seq).encode() + b"}"


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, done: Callable[[Connection, int], None]) -> None:
        self._done = done
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:
        self._done(self, self._parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._done(self, 0)  # status 0: no answer (counted only if a request was in flight)


class Load:
    """Counts and latency samples of one run."""

    def __init__(self, url: str, content_type: str, make_body: Callable[[int], bytes]) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: "
        ).encode()
        self.make_body = make_body
        self.sent_at: dict[Connection, int] = {}
        self.latencies_ns: list[int] = []
        self.lags_ns: list[int] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.idle: collections.deque[Connection] = collections.deque()
        self.waiting: collections.deque[int] = collections.deque()  # due times (ns)
        self.seq = 0
        self.on_free: Callable[[Connection], None] = self.idle.append
        self.on_lost: Callable[[], None] = lambda: None

    async def connect(self, count: int) -> list[Connection]:
        loop = asyncio.get_running_loop()
        conns = []
        for _ in range(count):
            _, proto = await loop.create_connection(
                lambda: Connection(self.answered), self.host, self.port
            )
            conns.append(proto)
        return conns

    def take_idle(self) -> Connection | None:
        while self.idle:
            conn = self.idle.popleft()
            if not conn.closed:
                return conn
        return None

    def send(self, conn: Connection, due_ns: int | None = None) -> None:
        body = self.make_body(self.seq)
        self.seq += 1
        now = time.monotonic_ns()
        if due_ns is not None:
            self.lags_ns.append(now - due_ns)
        self.sent_at[conn] = now
        assert conn.transport is not None
        conn.transport.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)

    def answered(self, conn: Connection, status: int) -> None:
        sent_ns = self.sent_at.pop(conn, None)
        if sent_ns is None:
            return  # closed while idle
        self.statuses[status] += 1
        if conn.closed:
            self.on_lost()
            return
        self.latencies_ns.append(time.monotonic_ns() - sent_ns)
        self.on_free(conn)


async def open_loop(load: Load, rate: float, seconds: float, connections: int) -> float:
    conns = await load.connect(connections)
    load.idle.extend(conns)

    def free(conn: Connection) -> None:
        if load.waiting:
            load.send(conn, load.waiting.popleft())
        else:
            load.idle.append(conn)
            if not load.sent_at:
                idle.set()

    idle = asyncio.Event()

    def lost() -> None:
        if not load.sent_at:
            idle.set()

    load.on_free = free
    load.on_lost = lost
    total = max(1, int(rate * seconds))
    interval_ns = 1e9 / rate
    start_ns = time.monotonic_ns() + 10_000_000
    i = 0
    while i < total:
        now = time.monotonic_ns()
        due = min(total, int((now - start_ns) / interval_ns) + 1)
        while i < due:
            due_ns = start_ns + int(i * interval_ns)
            conn = load.take_idle()
            if conn is not None:
                load.send(conn, due_ns)
            else:
                load.waiting.append(due_ns)
            i += 1
        next_ns = start_ns + int(i * interval_ns)
        await asyncio.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))
    elapsed = (time.monotonic_ns() - start_ns) / 1e9
    if load.sent_at or load.waiting:
        idle.clear()
        try:
            await asyncio.wait_for(idle.wait(), 10.0)  # the last answers, bounded
        except TimeoutError:
            pass
    _close(conns)
    return elapsed


async def closed_loop(
    load: Load, seconds: float | None, requests: int | None, connections: int
) -> float:
    conns = await load.connect(connections)
    started = time.monotonic()
    stop_at = started + seconds if seconds else None
    limit = requests if requests is not None else sys.maxsize
    finished = asyncio.get_running_loop().create_future()

    def free(conn: Connection) -> None:
        out_of_time = stop_at is not None and time.monotonic() >= stop_at
        if load.seq < limit and not out_of_time:
            load.send(conn)
        elif not load.sent_at and not finished.done():
            finished.set_result(None)

    def lost() -> None:
        if not load.sent_at and not finished.done():
            finished.set_result(None)  # every connection gone: nothing more to wait for

    load.on_free = free
    load.on_lost = lost
    for conn in conns[: min(connections, limit)]:
        load.send(conn)
    await asyncio.wait_for(finished, (seconds or 0) + 60)
    elapsed = time.monotonic() - started
    _close(conns)
    return elapsed


def _close(conns: list[Connection]) -> None:
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    if not samples_ns:
        return {}
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1] / 1e6}


def summary(load: Load, elapsed_s: float) -> dict[str, Any]:
    ok = sum(n for status, n in load.statuses.items() if 200 <= status < 300)
    return {
        "sent": load.seq,
        "answered": sum(load.statuses.values()),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "elapsed_s": elapsed_s,
        "rps": sum(load.statuses.values()) / elapsed_s if elapsed_s else 0.0,
        "ok_rps": ok / elapsed_s if elapsed_s else 0.0,
        "latency_ms": percentiles_ms(load.latencies_ns),
        "lag_ms": percentiles_ms(load.lags_ns),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    content_type, make_body = body_maker(args.body, args.batch)
    load = Load(args.url, content_type, make_body)
    if args.rate:
        elapsed = await open_loop(load, args.rate, args.seconds, args.connections)
    else:
        seconds = None if args.requests else args.seconds
        elapsed = await closed_loop(load, seconds, args.requests, args.connections)
    return summary(load, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=None, help="closed loop: stop after N")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body", choices=["event", "batch", "plain"], default="event")
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    args = parser.parse_args()
    result = uvloop.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
