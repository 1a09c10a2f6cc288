"""The live tails of ``runtime/logs_nats.py``: one ordered consumer per tailed function.

While a function has a tail in this instance, one ordered consumer follows its subject and
hands every line, this instance's and the other instances', to the
:class:`~eventgateway.runtime.logs_tail.TailHub` with its stream sequence as position, in
stream order; a tail that falls behind reads the subject back from that sequence.

A consumer must start between the lines appended before its first tail opened and those
after, so the publisher of the store starts it (:meth:`StreamTails.start`) between two
batches, once every line accepted before the tail is published: then the stream's last
sequence divides the two. The consumer ends at the first line that finds no tail left.

nats errors are logged here: a tail without its consumer only stays silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.client import JetStreamContext

from eventgateway.errors import StoreError
from eventgateway.runtime._logs_nats_stream import decode_line, translated
from eventgateway.runtime.logs_tail import LogTail, ReadFrom, TailHub
from eventgateway.store._nats_feed import follow

__all__ = ["StreamTails"]

logger = logging.getLogger(__name__)

_Key = tuple[str, str]


class StreamTails:
    """The tails of one log stream in this instance.

    Args:
        js: the JetStream context of the store.
        stream: the stream's name.
        subject: the subject of ``(space, function_id)``.
        read: reads a subject back by sequence, for tails that fell behind.
        buffer_lines: each tail's buffer of live lines.
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        subject: Callable[[str, str], str],
        read: ReadFrom,
        buffer_lines: int,
    ) -> None:
        self.hub = TailHub(read, buffer_lines)
        self._js = js
        self._stream = stream
        self._subject = subject
        self._follows: dict[_Key, Subscription] = {}
        # Functions whose consumer is to start once `accepted` lines are published, and
        # the future wait_ready() awaits.
        self._wanted: dict[_Key, tuple[int, asyncio.Future[None]]] = {}

    def open(self, space: str, function_id: str, accepted: int) -> tuple[LogTail, bool]:
        """A new tail, and whether its consumer is still to start (after the first
        ``accepted`` lines of this instance are published)."""
        tail = self.hub.open(space, function_id)
        key = (space, function_id)
        if key in self._follows or key in self._wanted:
            return tail, False
        self._wanted[key] = (accepted, asyncio.get_running_loop().create_future())
        return tail, True

    async def wait_ready(self, space: str, function_id: str) -> None:
        """Wait until the consumer of ``function_id`` started (or failed to)."""
        wanted = self._wanted.get((space, function_id))
        if wanted is not None:
            await asyncio.shield(wanted[1])

    def batch_limit(self, settled: int, size: int) -> int:
        """``size``, or fewer so that a batch ends where a waiting consumer must start."""
        for accepted, _ in self._wanted.values():
            size = max(1, min(size, accepted - settled))
        return size

    @property
    def waiting(self) -> bool:
        """Whether a consumer is still to start."""
        return bool(self._wanted)

    async def start(self, settled: int) -> None:
        """Start the consumers waiting for no more than ``settled`` published lines; call
        it only while no line of this instance is being published."""
        ready = [key for key, (accepted, _) in self._wanted.items() if accepted <= settled]
        if not ready:
            return
        try:
            with translated(f"read the last sequence of {self._stream}"):
                last = (await self._js.stream_info(self._stream)).state.last_seq
        except StoreError as exc:
            last = None
            logger.warning("tails of %s cannot follow the stream: %s", self._stream, exc)
        for key in ready:
            _, started = self._wanted.pop(key)
            if last is not None and self.hub.count(*key):
                await self._follow(key, last)
            if not started.done():
                started.set_result(None)

    async def close(self) -> None:
        """End every tail and consumer; consumers still to start never will."""
        self.hub.close()
        for _, started in self._wanted.values():
            if not started.done():
                started.set_result(None)
        self._wanted.clear()
        subscriptions, self._follows = list(self._follows.values()), {}
        for sub in subscriptions:
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await sub.unsubscribe()

    async def _follow(self, key: _Key, last: int) -> None:
        async def on_message(msg: Msg) -> None:
            if not self.hub.count(*key):  # the last tail went: stop following
                sub = self._follows.pop(key, None)
                if sub is not None:
                    with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                        await sub.unsubscribe()
                return
            line = decode_line(msg.data)
            if line is not None:
                self.hub.publish(msg.metadata.sequence.stream, (line,))

        try:
            self._follows[key] = await follow(
                self._js, self._stream, self._subject(*key), last, on_message
            )
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            logger.warning("tail of %r: cannot follow the stream %s: %r", key, self._stream, exc)
