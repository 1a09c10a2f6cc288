"""Read timeouts: how long a client may take to send one request, per listener.

uvicorn bounds only the idle time between requests (``timeout_keep_alive``, armed after a
response); nothing bounds reading a request, so a client sending half a head, or a body
shorter than its Content-Length, or nothing at all, held its connection forever.

A timer per request would cost the Events API hot path a ``call_later`` and a cancel each
time. Instead each connection stamps the loop time when a request's first byte arrives (and
when it opens), and one :class:`ReadSweeper` per server walks the open connections on
uvicorn's tick: a connection whose stamp is older than its listener's timeout, and which
is still reading that request, is timed out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from eventgateway.settings import Limits

__all__ = ["NOT_READING", "ReadSweeper", "ReadTimeouts", "Reader"]

# A stamp meaning "no request being read": now - inf is never over a timeout.
NOT_READING = math.inf

_MAX_SWEEP_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class ReadTimeouts:
    """Seconds each listener allows from a request's first byte to the end of its body."""

    events_s: float
    config_s: float

    @classmethod
    def of(cls, limits: Limits) -> ReadTimeouts:
        """The read timeouts ``limits`` set (``events_read_timeout_s``, ``config_…``)."""
        return cls(limits.events_read_timeout_s, limits.config_read_timeout_s)


class Reader(Protocol):
    """A connection as the sweeper sees it (``HeadLimitedProtocol`` in ``server.py``)."""

    # Loop time the latest request began at (its first byte, or the connection's opening
    # before any); NOT_READING once nothing more will be read.
    read_since_s: float
    server: tuple[str, int | None] | None  # the local address: which listener

    def reading(self) -> bool:
        """Whether the client still owes part of that request (and reading is not held
        up by the server's own flow control)."""
        ...

    def time_out_read(self, timeout_s: float) -> None:
        """Answer 408 (or just close) a connection whose request is overdue."""
        ...


class ReadSweeper:
    """Times out the connections of one server whose request takes too long to arrive.

    Args:
        timeouts: the two listeners' read timeouts.
        config_port: the Configuration API's local port; connections on any other port
            get the Events API's timeout.
        clock: the event loop's ``time`` (the clock the connections stamp with).
    """

    def __init__(
        self, timeouts: ReadTimeouts, config_port: int | None, clock: Callable[[], float]
    ) -> None:
        self.timeouts = timeouts
        self.config_port = config_port
        self._clock = clock
        # A request times out between timeout_s and timeout_s + interval_s after it began
        # (interval_s at least 0.1 s in effect: uvicorn ticks no more often).
        self.interval_s = min(_MAX_SWEEP_INTERVAL_S, timeouts.events_s / 4, timeouts.config_s / 4)
        self._next_sweep_s = clock() + self.interval_s

    def timeout_s(self, connection: Reader) -> float:
        """The read timeout of the listener ``connection`` arrived on."""
        server = connection.server
        if server is not None and server[1] == self.config_port:
            return self.timeouts.config_s
        return self.timeouts.events_s

    def tick(self, connections: Iterable[Reader]) -> None:
        """Sweep if a sweep is due; call it often (uvicorn ticks every 0.1 s)."""
        now = self._clock()
        if now >= self._next_sweep_s:
            self._next_sweep_s = now + self.interval_s
            self.sweep(connections, now)

    def sweep(self, connections: Iterable[Reader], now: float) -> None:
        """Time out every connection whose request began over its timeout before ``now``."""
        shortest_s = min(self.timeouts.events_s, self.timeouts.config_s)
        overdue: list[tuple[Reader, float]] = []
        for connection in connections:
            waited_s = now - connection.read_since_s
            if waited_s <= shortest_s:
                continue  # most connections: their latest request began recently
            timeout_s = self.timeout_s(connection)
            if waited_s > timeout_s and connection.reading():
                overdue.append((connection, timeout_s))
        # Acting after the walk: timing out may change the set being walked.
        for connection, timeout_s in overdue:
            connection.time_out_read(timeout_s)
