"""``NatsLogStore``: function logs in the JetStream stream ``<prefix>-logs``, shared by instances.

Each line is one message on ``<prefix>.logs.<space>.<function>`` (both tokens encoded as
in ``store/_nats_keys.py``, so any name is safe). The stream's limits do the retention:
``max_age`` and ``max_msgs_per_subject`` (lines per function) drop the oldest lines on the
server, for every instance at once.

* ``append`` puts lines in a bounded buffer one background task publishes (pipelined
  ``publish_async``); lines that do not fit, or fail, are counted and a ``system`` line
  says how many were dropped. ``query`` waits for this instance's earlier appends, then
  reads the function's subject with an ordered consumer (bounded by the per-subject limit).
* Tails read the stream, each line with its stream sequence as position, through one
  ordered consumer per tailed function (``runtime/_logs_nats_tails.py``), started by the
  publisher between two batches; a tail that falls behind reads back (``read_from``).

nats errors are translated into :class:`~eventgateway.errors.StoreError` here.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import PubAck

from eventgateway.errors import StoreError
from eventgateway.runtime._logs_nats_stream import (
    decode_line,
    encode_line,
    logs_stream_config,
    read_page,
    read_subject,
    sweep,
    translated,
)
from eventgateway.runtime._logs_nats_tails import StreamTails
from eventgateway.runtime.base import LogLine, LogStore
from eventgateway.runtime.logs_tail import (
    DEFAULT_TAIL_BUFFER_LINES,
    LogTail,
    Positioned,
    dropped_marker,
)
from eventgateway.store._nats_keys import encode_segment, valid_prefix

__all__ = ["DEFAULT_PREFIX", "NatsLogStore"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "eventgateway"
_BATCH_LINES: Final = 512  # published before their acks are awaited together
_LINE_OVERHEAD_BYTES: Final = 400  # as in logs_writer.py
_PAYLOAD_SLACK_BYTES: Final = 4096  # room for the subject and protocol under max_payload


class NatsLogStore(LogStore):
    """Function logs in the JetStream stream ``<prefix>-logs``; tails see every instance.

    Args:
        nc: a connected client; the store never closes it.
        prefix: starts the stream's name and subjects (as for the config store).
        max_age_s: the stream's ``max_age``: lines older than this leave on the server.
        max_lines_per_function: the stream's ``max_msgs_per_subject``.
        max_bytes: the whole stream's size bound (``-1``: none but the two above).
        max_buffered_lines: lines waiting to be published at most; more are dropped.
        max_buffered_bytes: the same bound in (estimated) bytes.
        tail_buffer_lines: each live tail's queue.
        request_timeout_s: how long a batch's acks or one JetStream request may take.
        query_timeout_s: how long reading one function's lines may take.
        replicas: the stream's replicas; use 3 in a cluster.

    Raises:
        ValueError: ``prefix`` holds characters a stream name cannot.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        nc: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_age_s: float = 7 * 86_400.0,
        max_lines_per_function: int = 100_000,
        max_bytes: int = -1,
        max_buffered_lines: int = 100_000,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        tail_buffer_lines: int = DEFAULT_TAIL_BUFFER_LINES,
        request_timeout_s: float = 5.0,
        query_timeout_s: float = 30.0,
        replicas: int = 1,
    ) -> None:
        if not valid_prefix(prefix):
            raise ValueError(f"prefix {prefix!r}: use 1 to 64 of A-Z, a-z, 0-9, '-' and '_'")
        self.prefix = prefix
        self.stream = f"{prefix}-logs"
        self._nc = nc
        self._js = nc.jetstream(timeout=request_timeout_s)
        self._config = logs_stream_config(
            prefix,
            max_age_s=max_age_s,
            max_lines_per_function=max_lines_per_function,
            max_bytes=max_bytes,
            replicas=replicas,
        )
        self._max_lines = max_buffered_lines
        self._max_bytes = max_buffered_bytes
        self._request_timeout_s = request_timeout_s
        self._query_timeout_s = query_timeout_s
        self._origin = uuid.uuid4().hex  # names the instance that wrote a line
        self._tails = StreamTails(
            self._js, self.stream, self.subject, self.read_from, tail_buffer_lines
        )
        self._buffer: collections.deque[LogLine] = collections.deque()
        self._buffered_bytes = 0
        self._dropped: dict[tuple[str, str], int] = {}  # not yet reported in a notice
        self._accepted = 0  # lines taken into the buffer, ever
        self._settled = 0  # of those, published or lost
        self._progress = asyncio.Condition()
        self._wakeup = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped_lines = 0  # did not fit in the buffer, or came after close()
        self.failed_lines = 0  # their publish failed (logged)
        self.published_lines = 0

    def subject(self, space: str, function_id: str) -> str:
        """The subject one function's lines are published on."""
        return f"{self.prefix}.logs.{encode_segment(space)}.{encode_segment(function_id)}"

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the stream (or apply this store's limits to it) and start publishing.

        Raises:
            StoreError: NATS refused or did not answer.
        """
        with translated(f"create the stream {self.stream}"):
            try:
                await self._js.add_stream(self._config)
            except nats.js.errors.BadRequestError:
                await self._js.update_stream(self._config)  # exists with other limits
        self._publisher = asyncio.create_task(self._publish_loop(), name=f"{self.stream}-pub")

    def end_tails(self) -> None:
        self._tails.hub.close()

    def end_space_tails(self, space: str) -> None:
        self._tails.hub.end_space(space)

    async def close(self) -> None:
        """End tails, publish what is buffered (within the request timeout), unsubscribe."""
        if self._closed:
            return
        self._closed = True
        self._tails.hub.close()
        self._wakeup.set()
        if self._publisher is not None:
            try:
                async with asyncio.timeout(self._request_timeout_s * 2):
                    await asyncio.shield(self._publisher)
            except TimeoutError:
                self._publisher.cancel()
                logger.warning(
                    "closing %s: %d log lines unpublished", self.stream, len(self._buffer)
                )
        await self._tails.close()

    # -- append and the publisher -----------------------------------------------------------

    def append(self, lines: Sequence[LogLine]) -> None:
        """Buffer ``lines`` for publishing (tails get them from the stream); never blocks."""
        if not lines:
            return
        if self._closed:
            self.dropped_lines += len(lines)
            return
        for index, line in enumerate(lines):
            size = len(line.message) + _LINE_OVERHEAD_BYTES
            if (
                len(self._buffer) >= self._max_lines
                or self._buffered_bytes + size > self._max_bytes
            ):
                # The rest of the call goes too: what is kept has no holes mid-burst.
                for dropped in lines[index:]:
                    key = (dropped.space, dropped.function_id)
                    self._dropped[key] = self._dropped.get(key, 0) + 1
                self.dropped_lines += len(lines) - index
                break
            self._buffer.append(line)
            self._buffered_bytes += size
            self._accepted += 1
        self._wakeup.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while True:
                if self._tails.waiting:  # no line is in flight now: consumers may start
                    await self._tails.start(self._settled)
                if not (self._buffer or self._dropped):
                    break
                size = self._tails.batch_limit(self._settled, _BATCH_LINES)
                batch = [self._buffer.popleft() for _ in range(min(size, len(self._buffer)))]
                self._buffered_bytes -= sum(len(x.message) + _LINE_OVERHEAD_BYTES for x in batch)
                notices = self._notices()
                await self._publish(batch + notices)
                self._settled += len(batch)
                async with self._progress:
                    self._progress.notify_all()
            if self._closed:
                return

    def _notices(self) -> list[LogLine]:
        why = "the log store could not keep up (NATS was slower than the function)"
        notices = [
            dropped_marker(space, function_id, count, why)
            for (space, function_id), count in self._dropped.items()
        ]
        for (space, function_id), count in self._dropped.items():
            logger.warning(
                "Dropped %d log lines of function %r in space %r: %s",
                count,
                function_id,
                space,
                why,
            )
        self._dropped.clear()
        return notices

    async def _publish(self, lines: list[LogLine]) -> None:
        limit = self._nc.max_payload - _PAYLOAD_SLACK_BYTES
        acks: list[asyncio.Future[PubAck]] = []
        try:
            async with asyncio.timeout(self._request_timeout_s):
                for line in lines:
                    payload = encode_line(self._origin, line, limit)
                    subject = self.subject(line.space, line.function_id)
                    acks.append(await self._js.publish_async(subject, payload))
                results = await asyncio.gather(*acks, return_exceptions=True)
        except Exception as exc:  # never let the publisher die: the lines are lost, counted
            for ack in acks:
                ack.cancel()  # frees its slot among the client's pending publishes
            self.failed_lines += len(lines)
            logger.error(
                "Lost %d function log lines publishing to %s: %r", len(lines), self.stream, exc
            )
            return
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            self.failed_lines += len(failed)
            logger.error("Lost %d function log lines: %r", len(failed), failed[0])
        self.published_lines += len(lines) - len(failed)

    async def flush(self) -> None:
        """Wait until every line appended before this call is published (or lost).

        Raises:
            StoreError: the store is not open or closed, or the wait took too long.
        """
        self._check_open()
        target = self._accepted
        try:
            async with asyncio.timeout(self._query_timeout_s), self._progress:
                await self._progress.wait_for(lambda: self._settled >= target)
        except TimeoutError as exc:
            raise StoreError(f"function log store {self.stream}: publishing is stuck") from exc

    def _check_open(self) -> None:
        if self._publisher is None:
            raise StoreError(f"the function log store {self.stream} is not open")
        if self._closed:
            raise StoreError(f"the function log store {self.stream} is closed")

    # -- reads ------------------------------------------------------------------------------

    async def _lines(self, space: str, function_id: str) -> list[tuple[int, LogLine]]:
        """Every kept line of one function with its stream sequence, in stream order."""
        await self.flush()
        with translated(f"read the logs of {function_id!r}"):
            messages = await read_subject(
                self._js, self.stream, self.subject(space, function_id), self._query_timeout_s
            )
        lines: list[tuple[int, LogLine]] = []
        for msg in messages:
            line = decode_line(msg.data)
            if line is not None:
                lines.append((msg.metadata.sequence.stream, line))
        return lines

    async def query(
        self,
        space: str,
        function_id: str,
        *,
        since: float | None = None,
        limit: int = 1000,
        filter: str | None = None,
    ) -> list[LogLine]:
        """The newest ``limit`` lines matching ``since`` and ``filter``, oldest first.

        Raises:
            StoreError: NATS did not answer, or the store is not open or closed.
        """
        if limit < 1:
            return []
        found = [
            (line.timestamp, seq, line)
            for seq, line in await self._lines(space, function_id)
            if (since is None or line.timestamp >= since) and (not filter or filter in line.message)
        ]
        found.sort(key=lambda item: (item[0], item[1]))
        return [line for _, _, line in found[-limit:]]

    async def read_from(
        self, space: str, function_id: str, position: int, limit: int
    ) -> list[Positioned]:
        """The lines at stream sequence ``position`` or after, at most ``limit``.

        Raises:
            StoreError: NATS did not answer, or the store is not open or closed.
        """
        if limit < 1:
            return []
        # No flush(): a tail's lines come from the stream, so they are there already.
        self._check_open()
        subject = self.subject(space, function_id)
        with translated(f"read the logs of {function_id!r}"):
            messages = await read_page(
                self._js, self.stream, subject, position, limit, self._query_timeout_s
            )
        found: list[Positioned] = []
        for msg in messages:
            line = decode_line(msg.data)
            if line is not None:
                found.append((msg.metadata.sequence.stream, line))
        return found

    async def enforce_retention(self, *, max_age_s: float, max_lines_per_function: int) -> int:
        """Delete lines whose timestamps are older than ``max_age_s``, and all but the
        newest ``max_lines_per_function`` of each function.

        The stream's own limits already do this by arrival time; this sweep reads every
        function's lines, so call it rarely.

        Raises:
            StoreError: NATS did not answer, or the store is not open or closed.
        """
        if max_lines_per_function < 0:
            raise ValueError(
                f"max_lines_per_function {max_lines_per_function!r} must not be negative"
            )
        await self.flush()
        return await sweep(
            self._js,
            self.stream,
            f"{self.prefix}.logs.>",
            cutoff=time.time() - max_age_s,
            max_lines=max_lines_per_function,
            timeout_s=self._query_timeout_s,
        )

    async def forget_space(self, space: str) -> None:
        """End its tails here, publish what is buffered, purge its subjects: StoreError."""
        self.end_space_tails(space)
        await self.flush()
        subjects = f"{self.prefix}.logs.{encode_segment(space)}.>"
        with translated(f"delete the logs of space {space!r}"):
            await self._js.purge_stream(self.stream, subject=subjects)

    # -- live tails -------------------------------------------------------------------------

    def tail(self, space: str, function_id: str) -> LogTail:
        """Lines stored from now on, by this instance and the others, once
        :meth:`wait_tail_ready` returns; this instance's lines appended after this call
        are never missed."""
        if self._closed:
            return self._tails.hub.open(space, function_id)  # ends at once
        tail, to_start = self._tails.open(space, function_id, self._accepted)
        if to_start:
            self._wakeup.set()  # the publisher starts its consumer
        return tail

    async def wait_tail_ready(self, space: str, function_id: str) -> None:
        """Wait until the stream's lines reach this function's tails here."""
        await self._tails.wait_ready(space, function_id)

    def tail_count(self, space: str | None = None, function_id: str | None = None) -> int:
        """Open tails, of one function or of all."""
        return self._tails.hub.count(space, function_id)
