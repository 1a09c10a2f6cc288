"""The stream-state counters of :class:`~eventgateway.queue.jetstream.JetStreamQueue`:
its backlog and bytes, as last asked of the server (``accept`` bounds itself by them)."""

from __future__ import annotations

import time

from nats.js.client import JetStreamContext

from eventgateway.queue._common import Wakeup
from eventgateway.queue.jetstream_wire import Names, is_nats_error

__all__ = ["JetStreamCountersMixin"]


class JetStreamCountersMixin:
    """``backlog``, ``stats`` and ``notify``; the queue provides the state."""

    names: Names
    _js: JetStreamContext | None
    _wakeup: Wakeup
    _backlog: int
    _bytes: int
    _refreshed_at: float
    _backlog_refresh_s: float

    async def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._js is None or (not force and now - self._refreshed_at < self._backlog_refresh_s):
            return
        self._refreshed_at = now  # concurrent callers need not ask too
        try:
            info = await self._js.stream_info(self.names.deliveries_stream)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            return  # keep the last known numbers; the stream's limits still hold
        self._backlog = info.state.messages
        self._bytes = info.state.bytes
        self._refreshed_at = now

    async def refresh_counters(self) -> None:
        """Ask the server for the backlog if the copy is older than the refresh interval:
        an instance that accepts nothing would otherwise report its last figure forever."""
        await self._refresh()

    def notify(self) -> None:
        """Look at the fetched deliveries again (e.g. after ``exclude`` changed)."""
        self._wakeup.fire()

    def backlog(self) -> int:
        """Unsettled deliveries in the stream, as of the last refresh (all instances')."""
        return self._backlog

    def stats(self) -> dict[str, int]:
        """``backlog`` and ``bytes`` (the stream's, headers included), as last refreshed."""
        return {"backlog": self._backlog, "bytes": self._bytes}
