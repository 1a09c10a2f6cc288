"""In-process change notification shared by the embedded stores.

A store reads its change log with ``fetch(after_revision)``; :func:`follow` turns that into
the endless, ordered iterator ``ConfigStore.watch`` promises. Watchers sleep on an
:class:`asyncio.Condition` that the store signals after each commit, so an idle watch
costs nothing (no polling).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from eventgateway.store.base import Change

__all__ = ["ChangeFeed", "follow"]


class ChangeFeed:
    """The latest committed revision, and a way to wait for a newer one or for close."""

    def __init__(self, head: int = 0) -> None:
        self.head = head
        self.closed = False
        self._condition = asyncio.Condition()

    async def publish(self, revision: int) -> None:
        """Record that ``revision`` is committed and wake every waiting watcher."""
        async with self._condition:
            self.head = max(self.head, revision)
            self._condition.notify_all()

    async def close(self) -> None:
        """Wake every watcher for good; :meth:`wait_beyond` returns ``False`` from now on."""
        async with self._condition:
            self.closed = True
            self._condition.notify_all()

    async def wait_beyond(self, revision: int) -> bool:
        """Wait until a revision above ``revision`` is committed (``True``) or close (``False``)."""
        async with self._condition:
            await self._condition.wait_for(lambda: self.closed or self.head > revision)
            return not self.closed


async def follow(
    feed: ChangeFeed,
    fetch: Callable[[int], Awaitable[list[Change]]],
    after_revision: int,
) -> AsyncIterator[Change]:
    """Yield every change above ``after_revision`` in order, then wait for more, until close.

    Args:
        feed: the store's notification.
        fetch: reads the logged changes above a revision, in order (may return a prefix).
        after_revision: where to start.
    """
    last = after_revision
    while not feed.closed:
        changes = await fetch(last)
        for change in changes:
            yield change
            last = change.revision
        if not changes and not await feed.wait_beyond(last):
            return
