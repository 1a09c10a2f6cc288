"""The delivery worker's durable queue (``eg serve --dispatch worker``): open it, hand back
a dead predecessor's leases, and dispatch it with a :class:`DispatchHost` for the gateway
that links to it.

Imported by ``call_worker.py`` only in this mode, so a worker that only makes calls
(``--dispatch process``) loads no queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from eventgateway.call_worker import STORE_URL_ENV
from eventgateway.dispatch.host import DispatchHost
from eventgateway.errors import StoreError
from eventgateway.fatal import LosesConnection
from eventgateway.queue.base import DeliveryQueue
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.sqlite import SqliteQueue

if TYPE_CHECKING:
    from eventgateway.call_worker import QueueOptions
    from eventgateway.providers.http import HttpProvider

__all__ = ["dispatching"]

logger = logging.getLogger(__name__)


def _durable_queue(options: QueueOptions) -> DeliveryQueue:
    """The gateway's durable queue: JetStream if it named a NATS store, else the file."""
    store_url = os.environ.get(STORE_URL_ENV, "")
    if store_url.startswith("nats://"):
        from eventgateway.cluster import jetstream_queue

        return jetstream_queue(
            store_url,
            max_deliveries=options.max_deliveries,
            max_bytes=options.max_bytes,
            dedup_window_s=options.dedup_window_s,
            lease_s=options.lease_s,
        )
    return SqliteQueue(
        options.path,
        max_deliveries=options.max_deliveries,
        max_bytes=options.max_bytes,
        dedup_window_s=options.dedup_window_s,
        lease_s=options.lease_s,
        synchronous=options.synchronous,
    )


@contextlib.asynccontextmanager
async def dispatching(
    options: QueueOptions, provider: HttpProvider
) -> AsyncIterator[asyncio.Task[None]]:
    """Dispatch the durable queue (and an at-most-once one) until the context ends.

    Yields the dispatching task; it ends without an error only once the gateway asked
    the worker to drain, so an error in it means nothing is delivered any more. On exit
    the deliveries in flight get ``options.shutdown_timeout_s`` to finish.
    """
    queue = _durable_queue(options)
    await queue.open()
    if isinstance(queue, SqliteQueue):
        # This process is the file's only leaser: leases still open belonged to a worker
        # that died (or to the last run of the gateway), and need not wait out their expiry.
        try:
            released = await queue.release_leases()
        except StoreError as exc:
            # A full disk: they come back when their leases run out. Failing here made the
            # worker restart over and over, a traceback each time (QA).
            logger.warning("could not hand back the leases of a previous worker: %s", exc)
            released = 0
        if released:
            logger.warning("handed back %d delivery lease(s) of a previous worker", released)
    fast = MemoryQueue(
        max_deliveries=options.fast_buffer,
        max_bytes=options.max_bytes,
        dedup_window_s=options.dedup_window_s,
        lease_s=options.lease_s,
    )
    await fast.open()
    host = DispatchHost(
        queue,
        fast,
        provider,
        concurrency=options.concurrency,
        per_subscription=options.per_subscription,
        timeout_s=options.timeout_s,
    )
    socket_path = options.socket_path
    # A socket file left by a killed worker would make bind() fail.
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(host.serve_connection, path=str(socket_path))
    os.chmod(socket_path, 0o600)
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    if isinstance(queue, LosesConnection):
        queue.on_lost = lambda reason: None if lost.done() else lost.set_result(reason)
    task = asyncio.create_task(_run_until_lost(host, lost, options), name="dispatcher")
    try:
        yield task
    finally:
        # Deliveries in flight finish, within shutdown_timeout_s (past it they are
        # cancelled, still leased, and come back); outcomes are written before the queue
        # closes.
        host.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, options.shutdown_timeout_s)
        await host.system.drain()
        server.close()
        await host.disconnect()
        await fast.close()
        await queue.close()
        socket_path.unlink(missing_ok=True)


async def _run_until_lost(
    host: DispatchHost, lost: asyncio.Future[str], options: QueueOptions
) -> None:
    """``host.run()``; a :class:`StoreError` once the queue's NATS client is closed for
    good, so that the worker exits and its supervisor starts one with a new client."""
    run = asyncio.ensure_future(host.run())
    try:
        await asyncio.wait((run, lost), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        run.cancel()
        raise
    if not lost.done():
        return await run
    host.stop()  # what is in flight finishes (its settles fail: it comes back)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(run, options.shutdown_timeout_s)
    raise StoreError(lost.result())
