"""The gateway on NATS JetStream: ingest and emit→delivery latency, beside the bare floor.

The same at-least-once ingest (``bench.ingest``) and latency sweep (``bench.latency``) as on
SQLite, with ``eg serve --store nats://127.0.0.1:4222?prefix=<unique>`` (one NATS server,
one replica). Each gateway gets its own prefix, and every stream, KV bucket and object store
of that prefix is deleted afterwards, whatever happened. When no server listens, the figure
says why instead of failing: the rest of the benchmark does not need NATS.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import ingest, latency
from bench.procs import start_receiver
from bench.runner import Context

NATS_URL = os.environ.get("EG_BENCH_NATS_URL", "nats://127.0.0.1:4222")


def unreachable(nats_url: str = NATS_URL) -> str | None:
    """Why the NATS server cannot be used, or ``None`` when it answers."""
    host, _, port = nats_url.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=1.0).close()
    except OSError as exc:
        return f"no NATS server at {nats_url} ({exc})"
    return None


async def delete_prefix(prefix: str, nats_url: str = NATS_URL) -> list[str]:
    """Delete every stream, KV bucket and object store of ``prefix``; their names."""
    import nats

    nc = await nats.connect(servers=[nats_url], connect_timeout=2, max_reconnect_attempts=0)
    deleted = []
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if name.startswith((prefix, f"KV_{prefix}", f"OBJ_{prefix}")):
                await js.delete_stream(name)
                deleted.append(name)
    finally:
        await nc.close()
    return deleted


@contextmanager
def store() -> Iterator[tuple[str, str]]:
    """``("--store", url)`` on a fresh prefix; deletes the prefix's streams on exit."""
    prefix = f"egbench-{uuid.uuid4().hex[:10]}"
    try:
        yield "--store", f"{NATS_URL}?prefix={prefix}"
    finally:
        asyncio.run(asyncio.wait_for(delete_prefix(prefix), 30))


def measure(ctx: Context) -> dict[str, Any]:
    """``{"ingest": …, "latency": [points]}``, or ``{"skipped": reason}``."""
    reason = unreachable()
    if reason is not None:
        return {"skipped": reason}
    with store() as args:
        found: dict[str, Any] = {"ingest": ingest.gateway(ctx, "at-least-once", "worker", *args)}
    receiver = start_receiver(ctx.owner, ctx.cores.load)
    try:
        with store() as args:
            found["latency"], _ = latency.through_gateway(ctx, receiver, *args)
    finally:
        ctx.owner.stop(receiver.proc)
    return found
