"""Live tails of function logs: in-process fan-out with a bounded queue per tail.

Every :class:`~eventgateway.runtime.base.LogStore` of this process hands each appended
line to a :class:`TailHub`, which copies it into the queue of every open :class:`LogTail`
of that function. A tail whose reader falls behind never slows the runtime down: its queue
keeps the newest ``max_buffered_lines`` lines, and the reader first gets one ``system``
line saying how many older ones were dropped.

Both sides run on the event loop's thread: appends come from the runtime's pipe readers
and tails are read by HTTP handlers, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Iterable
from typing import Final

from eventgateway.runtime.base import LogLine

__all__ = ["DEFAULT_TAIL_BUFFER_LINES", "LogTail", "TailHub", "dropped_marker", "is_notice"]

DEFAULT_TAIL_BUFFER_LINES: Final = 1000

_Key = tuple[str, str]
_NOTICE_PREFIX: Final = "[eventgateway] "


def dropped_marker(space: str, function_id: str, count: int, why: str) -> LogLine:
    """The ``system`` line that stands in for ``count`` lines dropped because ``why``."""
    noun = "line" if count == 1 else "lines"
    return LogLine(
        space=space,
        function_id=function_id,
        request_id="",
        timestamp=time.time(),
        stream="system",
        message=f"{_NOTICE_PREFIX}{count} log {noun} dropped: {why}",
    )


def is_notice(line: LogLine) -> bool:
    """Whether ``line`` is the gateway's own notice (dropped lines), not the function's."""
    return (
        line.stream == "system"
        and line.request_id == ""
        and line.message.startswith(_NOTICE_PREFIX)
    )


class LogTail:
    """One live tail of one function: an async iterator of the lines appended from now on.

    It ends when the store closes, or after :meth:`aclose`. Readers should call
    :meth:`aclose` (or use ``async with``) when they stop early; a tail that is merely
    dropped is forgotten by the hub when it is garbage-collected.
    """

    __slots__ = ("__weakref__", "_buffer", "_closed", "_dropped", "_hub", "_waiter", "key")

    def __init__(self, hub: TailHub, key: _Key, max_buffered_lines: int) -> None:
        self._hub = hub
        self.key = key
        self._buffer: collections.deque[LogLine] = collections.deque(maxlen=max_buffered_lines)
        self._dropped = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    # -- fed by the hub -------------------------------------------------------------------

    def _push(self, line: LogLine) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self._dropped += 1  # the deque drops the oldest line itself
        self._buffer.append(line)
        self._wake()

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- read by the caller ---------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Lines waiting to be read."""
        return len(self._buffer)

    def __aiter__(self) -> LogTail:
        return self

    async def __anext__(self) -> LogLine:
        # Cancelling a waiting __anext__ (a keep-alive timeout) loses no line: lines are
        # taken from the buffer only after the wait.
        while True:
            if self._dropped:
                count, self._dropped = self._dropped, 0
                space, function_id = self.key
                return dropped_marker(space, function_id, count, "this tail fell behind")
            if self._buffer:
                return self._buffer.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Stop the tail: it is removed from the hub and ends."""
        self._hub._discard(self)
        self._buffer.clear()
        self._dropped = 0
        self._end()

    async def __aenter__(self) -> LogTail:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class TailHub:
    """The open tails of every function, and the fan-out of appended lines to them.

    Args:
        max_buffered_lines: each tail's queue; when full, the oldest line is dropped.
    """

    def __init__(self, max_buffered_lines: int = DEFAULT_TAIL_BUFFER_LINES) -> None:
        if max_buffered_lines < 1:
            raise ValueError(f"max_buffered_lines {max_buffered_lines!r} must be at least 1")
        self._max_buffered_lines = max_buffered_lines
        # Weak: a reader that forgets aclose() must not leak its tail forever.
        self._tails: dict[_Key, weakref.WeakSet[LogTail]] = {}
        self._closed = False

    def open(self, space: str, function_id: str) -> LogTail:
        """A new tail of ``function_id``; it sees every line published after this call."""
        key = (space, function_id)
        tail = LogTail(self, key, self._max_buffered_lines)
        if self._closed:
            tail._end()
        else:
            self._tails.setdefault(key, weakref.WeakSet()).add(tail)
        return tail

    def publish(self, lines: Iterable[LogLine]) -> None:
        """Copy each line into the queue of every tail of its function."""
        tails = self._tails
        if not tails:
            return  # the common case: nobody is watching
        for line in lines:
            watchers = tails.get((line.space, line.function_id))
            if watchers:
                for tail in watchers:
                    tail._push(line)

    def count(self, space: str | None = None, function_id: str | None = None) -> int:
        """Open tails, of one function or of all."""
        if space is not None and function_id is not None:
            return len(self._tails.get((space, function_id), ()))
        return sum(len(watchers) for watchers in self._tails.values())

    def close(self) -> None:
        """End every tail (after it has handed out what it holds); new ones end at once."""
        self._closed = True
        tails, self._tails = self._tails, {}
        for watchers in tails.values():
            for tail in list(watchers):
                tail._end()

    def _discard(self, tail: LogTail) -> None:
        watchers = self._tails.get(tail.key)
        if watchers is not None:
            watchers.discard(tail)
            if not watchers:
                del self._tails[tail.key]
