"""Live tails of function logs: in-process fan-out, and catching up from the store.

Every :class:`~eventgateway.runtime.base.LogStore` of this process hands each line it
stores to a :class:`TailHub`, with the line's *position*: a number that grows with every
line the store keeps, in the order the hub receives them, and by which the store can read
its lines back (:data:`ReadFrom`). The hub copies the line into the buffer of every open
:class:`LogTail` of that function. A tail never slows the runtime down, and a tail whose
reader falls behind (a slow client, a burst of 20,000 lines) loses nothing:

* its buffer holds at most ``max_buffered_lines``; once full, it keeps no more live lines
  but remembers the position of the first one it let go;
* when the reader has taken what the buffer holds, the tail reads the store from that
  position, one page of ``page_lines`` at a time, and takes live lines again from the
  moment it asks for the last page, so that it rejoins the live lines with no gap and no
  repeat (a line the page also held is skipped by its position).

So each tail holds at most ``max_buffered_lines + page_lines`` lines, however slow its
reader. Only lines the store itself no longer has (retention removed them, or their
commit failed) are lost, and once the tail has caught up it says how many in one
``system`` line.

Both sides run on the event loop's thread: stores publish from the runtime's pipe readers
(or a NATS subscription) and tails are read by HTTP handlers, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from eventgateway.errors import StoreError
from eventgateway.runtime.base import LogLine

__all__ = [
    "DEFAULT_TAIL_BUFFER_LINES",
    "DEFAULT_TAIL_PAGE_LINES",
    "LogTail",
    "Positioned",
    "ReadFrom",
    "TailHub",
    "dropped_marker",
    "is_notice",
]

logger = logging.getLogger(__name__)

DEFAULT_TAIL_BUFFER_LINES: Final = 1000
DEFAULT_TAIL_PAGE_LINES: Final = 1000

Positioned = tuple[int, LogLine]
"""A stored line and its position in the store."""

ReadFrom = Callable[[str, str, int, int], Awaitable[list[Positioned]]]
"""``read(space, function_id, position, limit)``: the function's stored lines at
``position`` or after, by position, at most ``limit``; every line stored before the call
included. Raises :class:`~eventgateway.errors.StoreError`."""

_Key = tuple[str, str]
_NOTICE_PREFIX: Final = "[eventgateway] "
_LOST_REASON: Final = (
    "this tail fell behind, and the log store no longer had them (retention, or a failed write)"
)


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
    """One live tail of one function: an async iterator of the lines stored from now on.

    It ends when the store closes (after the lines it holds), or after :meth:`aclose`.
    Readers should call :meth:`aclose` (or use ``async with``) when they stop early; a
    tail that is merely dropped is forgotten by the hub when it is garbage-collected.
    """

    __slots__ = (
        "__weakref__",
        "_accepting",
        "_buffer",
        "_closed",
        "_cursor",
        "_hub",
        "_matched",
        "_max_buffered",
        "_overflow_at",
        "_page_lines",
        "_pending",
        "_read",
        "_refused",
        "_refused_upto",
        "_seen",
        "_waiter",
        "key",
    )

    def __init__(
        self, hub: TailHub, key: _Key, max_buffered_lines: int, page_lines: int, read: ReadFrom
    ) -> None:
        self._hub = hub
        self.key = key
        self._max_buffered = max_buffered_lines
        self._page_lines = page_lines
        self._read = read
        self._buffer: collections.deque[Positioned] = collections.deque()
        self._pending: collections.deque[LogLine] = collections.deque()  # read from the store
        self._accepting = True  # live lines go into the buffer
        # Set while behind: lines from this position on come from the store, once the
        # reader has taken the buffered lines before it.
        self._cursor: int | None = None
        self._overflow_at: int | None = None  # the first live line let go in this round
        self._seen = -1  # the last position handed out or read from the store
        # Accounting of lines lost to retention: live lines let go since the tail fell
        # behind, and how many of them the store gave back.
        self._refused = 0
        self._refused_upto = -1
        self._matched = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    # -- fed by the hub -------------------------------------------------------------------

    def _push(self, position: int, line: LogLine) -> None:
        if position <= self._seen:
            return  # already read from the store: NATS's live feed trails its stream
        if self._accepting:
            if len(self._buffer) < self._max_buffered:
                self._buffer.append((position, line))
                self._wake()
                return
            self._accepting = False
            self._overflow_at = position
            if self._cursor is None:
                self._cursor = position
        self._refused += 1
        self._refused_upto = position

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
        """Lines waiting to be read (live, or read back from the store)."""
        return len(self._buffer) + len(self._pending)

    def __aiter__(self) -> LogTail:
        return self

    async def __anext__(self) -> LogLine:
        # Cancelling a waiting __anext__ (a keep-alive timeout) loses no line: lines are
        # taken from the buffer only after the wait, and a cancelled read of the store is
        # made again.
        while True:
            if self._pending:
                return self._pending.popleft()
            buffer = self._buffer
            if buffer and (self._cursor is None or buffer[0][0] < self._cursor):
                position, line = buffer.popleft()
                self._seen = max(self._seen, position)
                return line
            if self._closed:
                raise StopAsyncIteration
            if self._cursor is not None:
                await self._catch_up(self._cursor)
                continue
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def _catch_up(self, cursor: int) -> None:
        # Buffered lines are from after an earlier page: the store has them too.
        if self._buffer:
            self._refused += len(self._buffer)
            self._refused_upto = max(self._refused_upto, self._buffer[-1][0])
            self._buffer.clear()
        # Live lines from now on are buffered: if this page is the last, they follow it.
        self._accepting = True
        self._overflow_at = None
        space, function_id = self.key
        try:
            page = await self._read(
                space, function_id, max(cursor, self._seen + 1), self._page_lines
            )
        except StoreError as exc:
            logger.warning(
                "A tail of function %r in space %r cannot catch up: %s", function_id, space, exc
            )
            self._rejoin(f"this tail fell behind, and the log store could not be read ({exc})")
            return
        for position, line in page:
            if position <= self._refused_upto:
                self._matched += 1
            self._pending.append(line)
        if page:
            self._seen = max(self._seen, page[-1][0])
        buffer = self._buffer
        while buffer and buffer[0][0] <= self._seen:  # taken live while the page was read
            position, _ = buffer.popleft()
            if position <= self._refused_upto:
                self._refused += 1  # counted as matched above, but never counted as let go
        if len(page) >= self._page_lines:
            self._cursor = self._seen + 1  # more may follow: read on
        elif self._overflow_at is not None:  # the buffer filled up again meanwhile
            self._cursor = max(self._overflow_at, self._seen + 1)
        else:
            self._rejoin(_LOST_REASON)

    def _rejoin(self, why: str) -> None:
        # Back in step with the live lines: what was let go and not read back is lost.
        lost = self._refused - self._matched
        self._refused = self._matched = 0
        self._refused_upto = -1
        self._cursor = None
        self._overflow_at = None
        self._accepting = True
        if lost > 0:
            space, function_id = self.key
            self._pending.append(dropped_marker(space, function_id, lost, why))

    async def aclose(self) -> None:
        """Stop the tail: it is removed from the hub and ends."""
        self._hub._discard(self)
        self._buffer.clear()
        self._pending.clear()
        self._cursor = None
        self._end()

    async def __aenter__(self) -> LogTail:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class TailHub:
    """The open tails of every function, and the fan-out of stored lines to them.

    Args:
        read: reads a function's stored lines back by position, for tails that fell
            behind.
        max_buffered_lines: each tail's buffer of live lines.
        page_lines: lines a tail reads back from the store at a time.
    """

    def __init__(
        self,
        read: ReadFrom,
        max_buffered_lines: int = DEFAULT_TAIL_BUFFER_LINES,
        page_lines: int = DEFAULT_TAIL_PAGE_LINES,
    ) -> None:
        if max_buffered_lines < 1:
            raise ValueError(f"max_buffered_lines {max_buffered_lines!r} must be at least 1")
        if page_lines < 1:
            raise ValueError(f"page_lines {page_lines!r} must be at least 1")
        self._read = read
        self._max_buffered_lines = max_buffered_lines
        self._page_lines = page_lines
        # Weak: a reader that forgets aclose() must not leak its tail forever.
        self._tails: dict[_Key, weakref.WeakSet[LogTail]] = {}
        self._closed = False

    def open(self, space: str, function_id: str) -> LogTail:
        """A new tail of ``function_id``; it sees every line published after this call."""
        key = (space, function_id)
        tail = LogTail(self, key, self._max_buffered_lines, self._page_lines, self._read)
        if self._closed:
            tail._end()
        else:
            self._tails.setdefault(key, weakref.WeakSet()).add(tail)
        return tail

    def watched(self, space: str, function_id: str) -> bool:
        """Whether ``function_id`` has an open tail."""
        return bool(self._tails.get((space, function_id)))

    def publish(self, first_position: int, lines: Sequence[LogLine]) -> None:
        """Copy each line into every tail of its function; ``lines[i]`` is at position
        ``first_position + i``, and positions only grow from one call to the next."""
        tails = self._tails
        if not tails:
            return  # the common case: nobody is watching
        for offset, line in enumerate(lines):
            watchers = tails.get((line.space, line.function_id))
            if watchers:
                position = first_position + offset
                for tail in watchers:
                    tail._push(position, line)

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

    def end_space(self, space: str) -> None:
        """End the open tails of every function of ``space`` (it is being deleted: they
        must not follow what a next owner of the name writes)."""
        for key in [key for key in self._tails if key[0] == space]:
            for tail in list(self._tails.pop(key)):
                tail._end()

    def _discard(self, tail: LogTail) -> None:
        watchers = self._tails.get(tail.key)
        if watchers is not None:
            watchers.discard(tail)
            if not watchers:
                del self._tails[tail.key]
