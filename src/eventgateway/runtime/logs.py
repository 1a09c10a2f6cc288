"""Function logs: the in-memory store, and the names shared by every store.

Two implementations of :class:`~eventgateway.runtime.base.LogStore`:

* :class:`MemoryLogStore` — lines in a list per function; for tests and ``memory://``.
* :class:`~eventgateway.runtime.logs_sqlite.SqliteLogStore` — ``<data-dir>/logs.db``,
  written in batches by a thread of its own.

The contract both keep (``tests/runtime_logs`` runs one suite over both):

* ``append`` never blocks and never raises; it feeds live tails at once. It is called on
  the event loop's thread (tails are woken there without locks).
* Lines are ordered by timestamp, lines with equal timestamps in the order appended.
  ``query`` returns the newest ``limit`` lines with ``timestamp >= since`` whose message
  contains ``filter`` (case-sensitive), oldest first.
* ``tail`` (a :class:`~eventgateway.runtime.logs_tail.LogTail`) sees every line stored
  after the call, in order, once; it never slows ``append`` down. A reader that falls
  behind catches up from the store by position (``read_from``), and loses only lines the
  store no longer has, which one ``system`` line reports.
* ``read_from`` returns a function's lines at a position or after, by position: the
  order in which they were appended (and published to tails).
* ``enforce_retention`` deletes lines older than ``max_age_s`` and all but the newest
  ``max_lines_per_function`` of each function, and returns how many it deleted.
* ``forget_space`` deletes every line of a space (a deleted one), those appended before
  the call included; calling it again changes nothing.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from typing import Final

from eventgateway.runtime.base import LogLine, LogStore
from eventgateway.runtime.logs_sqlite import SqliteLogStore
from eventgateway.runtime.logs_tail import (
    DEFAULT_TAIL_BUFFER_LINES,
    LogTail,
    Positioned,
    TailHub,
)

__all__ = ["MemoryLogStore", "SqliteLogStore", "matches"]

DEFAULT_MEMORY_LINES_PER_FUNCTION: Final = 100_000


def matches(line: LogLine, since: float | None, filter: str | None) -> bool:
    """Whether ``line`` passes a query's ``since`` and ``filter``."""
    if since is not None and line.timestamp < since:
        return False
    return not filter or filter in line.message


def _timestamp(line: LogLine) -> float:
    return line.timestamp


def _position(item: Positioned) -> int:
    return item[0]


class MemoryLogStore(LogStore):
    """Function logs in memory, with live tails; nothing survives a restart.

    Args:
        max_lines_per_function: the newest lines kept per function, so a chatty function
            cannot grow the process without bound.
        tail_buffer_lines: each live tail's queue.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        max_lines_per_function: int = DEFAULT_MEMORY_LINES_PER_FUNCTION,
        tail_buffer_lines: int = DEFAULT_TAIL_BUFFER_LINES,
    ) -> None:
        if max_lines_per_function < 1:
            raise ValueError(
                f"max_lines_per_function {max_lines_per_function!r} must be at least 1"
            )
        self._max_lines = max_lines_per_function
        # Trimming a list from the front copies it; trim in slices of 1/8 so that the
        # cost per appended line stays constant.
        self._trim_at = max_lines_per_function + max(1, max_lines_per_function // 8)
        self._lines: dict[tuple[str, str], list[LogLine]] = {}
        # Each line's position, in the same order as _lines (by timestamp); the positions
        # grow with every append, so they stay sorted unless a line came out of time order.
        self._positions: dict[tuple[str, str], list[int]] = {}
        self._unsorted: set[tuple[str, str]] = set()
        self._next_position = 0
        self._tails = TailHub(self.read_from, tail_buffer_lines)
        self._closed = False
        self.dropped_lines = 0  # appended after close()

    def end_tails(self) -> None:
        self._tails.close()

    def end_space_tails(self, space: str) -> None:
        self._tails.end_space(space)

    async def close(self) -> None:
        """End running tails; later appends are dropped and counted in ``dropped_lines``."""
        self._closed = True
        self._tails.close()

    def append(self, lines: Sequence[LogLine]) -> None:
        """Keep ``lines`` and feed live tails."""
        if self._closed:
            self.dropped_lines += len(lines)
            return
        first = position = self._next_position
        for line in lines:
            key = (line.space, line.function_id)
            kept = self._lines.setdefault(key, [])
            positions = self._positions.setdefault(key, [])
            if not kept or kept[-1].timestamp <= line.timestamp:
                kept.append(line)  # the usual case, in time order
                positions.append(position)
            else:
                index = bisect.bisect_right(kept, line.timestamp, key=_timestamp)
                kept.insert(index, line)
                positions.insert(index, position)
                self._unsorted.add(key)
            position += 1
            if len(kept) > self._trim_at:
                del kept[: len(kept) - self._max_lines]
                del positions[: len(positions) - self._max_lines]
        self._next_position = position
        self._tails.publish(first, lines)

    async def query(
        self,
        space: str,
        function_id: str,
        *,
        since: float | None = None,
        limit: int = 1000,
        filter: str | None = None,
    ) -> list[LogLine]:
        """The newest ``limit`` lines matching ``since`` and ``filter``, oldest first."""
        kept = self._lines.get((space, function_id), [])
        stop = len(kept)
        start = max(0, stop - self._max_lines)  # lines not trimmed yet count as gone
        if since is not None:
            start = max(start, bisect.bisect_left(kept, since, key=_timestamp))
        found: list[LogLine] = []
        for index in range(stop - 1, start - 1, -1):
            if len(found) >= limit:
                break
            line = kept[index]
            if not filter or filter in line.message:
                found.append(line)
        found.reverse()
        return found

    async def read_from(
        self, space: str, function_id: str, position: int, limit: int
    ) -> list[Positioned]:
        """The lines at ``position`` or after, by position, at most ``limit``."""
        key = (space, function_id)
        kept = self._lines.get(key, [])
        positions = self._positions.get(key, [])
        skip = max(0, len(kept) - self._max_lines)  # lines not trimmed yet count as gone
        if key not in self._unsorted:
            start = max(skip, bisect.bisect_left(positions, position))
            return list(
                zip(positions[start : start + limit], kept[start : start + limit], strict=True)
            )
        found = [
            (at, line)
            for at, line in zip(positions[skip:], kept[skip:], strict=True)
            if at >= position
        ]
        found.sort(key=_position)
        return found[:limit]

    def tail(self, space: str, function_id: str) -> LogTail:
        """Lines appended from now on, until the store closes or the tail is closed."""
        return self._tails.open(space, function_id)

    def tail_count(self, space: str | None = None, function_id: str | None = None) -> int:
        """Open tails, of one function or of all."""
        return self._tails.count(space, function_id)

    async def enforce_retention(self, *, max_age_s: float, max_lines_per_function: int) -> int:
        """Delete lines older than ``max_age_s`` or beyond the newest N per function."""
        if max_lines_per_function < 0:
            raise ValueError(
                f"max_lines_per_function {max_lines_per_function!r} must not be negative"
            )
        keep = min(max_lines_per_function, self._max_lines)
        cutoff = time.time() - max_age_s
        deleted = 0
        for key, kept in list(self._lines.items()):
            if len(kept) > self._max_lines:  # trimming due anyway is not retention's work
                del kept[: len(kept) - self._max_lines]
                del self._positions[key][: len(self._positions[key]) - self._max_lines]
            first_young = bisect.bisect_left(kept, cutoff, key=_timestamp)
            first_kept = max(first_young, len(kept) - keep)
            deleted += first_kept
            del kept[:first_kept]
            del self._positions[key][:first_kept]
            if not kept:
                del self._lines[key]
                del self._positions[key]
                self._unsorted.discard(key)
        return deleted

    async def forget_space(self, space: str) -> None:
        """Delete every line of every function of ``space``."""
        self.end_space_tails(space)
        for key in [key for key in self._lines if key[0] == space]:
            del self._lines[key]
            del self._positions[key]
            self._unsorted.discard(key)
