"""Noticing that the client of a sync call went away while the call waits to start.

A sync route's function that runs here may have to wait for a free worker (its
``concurrency``); a client that gives up meanwhile should not have the handler run for
nobody. While :func:`watching_caller` is entered, :data:`~eventgateway.runtime.base.CALLER_GONE`
holds an event set on ``http.disconnect``; the runtime gives up a call still waiting for a
worker when it is set. A call already running is left to finish: its handler may be
halfway through what it does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from eventgateway.runtime.base import CALLER_GONE

__all__ = ["watching_caller"]


@contextlib.asynccontextmanager
async def watching_caller(receive: Callable[[], Awaitable[Any]]) -> AsyncIterator[None]:
    """Set ``CALLER_GONE`` while inside, to an event set when the client disconnects.

    Enter it only once the request's body has been read: every message after it is the
    disconnect (or the end of the response).
    """
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch(), name="caller-watch")
    token = CALLER_GONE.set(gone)
    try:
        yield
    finally:
        CALLER_GONE.reset(token)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
