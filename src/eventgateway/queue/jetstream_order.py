"""Per-key ordering for :class:`~eventgateway.queue.jetstream.JetStreamQueue`.

An ordered delivery (one with a partition key) is published on its key's subject
``<prefix>.ordered.<hash(space, subscription, key)>`` in the deliveries stream and read
by its own durable consumer. The stream holds each unsettled delivery once, so the
oldest message on a key's subject is the key's oldest unsettled delivery: its *head*
(``get_msg(next_by_subj)``; it stays the head while leased or waiting on a
``nak(delay)``, and moves on only when it is acked or removed). A fetched ordered message
is leasable only if it is its key's head; the consumer gives a message to one instance
at a time, so at most one delivery per key is out over all instances.

A later message of a key is *held*: kept alive with ``in_progress()`` (a ``nak`` would
count as an attempt), not counted against ``max_parked``. After settling a head for
good (ack or dead letter) an instance publishes ``<prefix>.released.<hash>`` on core
NATS; every instance re-checks its held messages of that key on it, and every
keep-alive tick re-checks them all (a lost notice costs at most ``lease_s / 3``).
"""

from __future__ import annotations

import logging
import time

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from eventgateway.queue._common import Wakeup
from eventgateway.queue.jetstream_wire import Names, is_nats_error

__all__ = ["JetStreamOrderMixin"]

logger = logging.getLogger(__name__)


class JetStreamOrderMixin:
    """Holding, re-checking and releasing ordered messages; the queue provides the state."""

    names: Names
    _nc: Client | None
    _js: JetStreamContext | None
    _wakeup: Wakeup
    _parked: dict[int, tuple[Msg, float]]
    # Ordered messages fetched while an older delivery of their key is unsettled:
    # stream sequence -> (message, monotonic time of the last keep-alive).
    _held: dict[int, tuple[Msg, float]]

    async def _admit(self, msg: Msg) -> None:
        """Park a fetched message, or hold it if an older one of its key is unsettled."""
        seq = msg.metadata.sequence.stream
        entry = (msg, time.monotonic())
        if not msg.subject.startswith(self.names.ordered_prefix):
            self._parked[seq] = entry
            return
        # Held before the check: a release that comes while it runs re-checks it.
        self._held[seq] = entry
        if await self._is_head(msg) and self._held.pop(seq, None) is not None:
            self._parked[seq] = entry

    async def _is_head(self, msg: Msg) -> bool:
        js = self._js
        if js is None:
            return False
        try:
            head = await js.get_msg(
                self.names.deliveries_stream, seq=1, subject=msg.subject, next=True
            )
        except NotFoundError:
            return False
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            return False  # held; the next keep-alive tick checks again
        return head.seq == msg.metadata.sequence.stream

    async def _recheck(self, subject: str | None = None) -> None:
        """Park the held messages (of ``subject``, or all) that became their key's head."""
        oldest: dict[str, int] = {}
        for seq, (msg, _) in self._held.items():
            if subject is None or msg.subject == subject:
                oldest[msg.subject] = min(seq, oldest.get(msg.subject, seq))
        moved = False
        for seq in oldest.values():
            entry = self._held.get(seq)
            if (
                entry is not None
                and await self._is_head(entry[0])
                and self._held.pop(seq, None) is not None
            ):
                self._parked[seq] = entry
                moved = True
        if moved:
            self._wakeup.fire()

    async def _released(self, msg: Msg) -> None:
        """Another (or this) instance settled a key's head: look at that key again."""
        key_hash = msg.subject.removeprefix(self.names.released_prefix)
        await self._recheck(self.names.ordered_prefix + key_hash)

    async def _release(self, msg: Msg) -> None:
        """Tell every instance that ``msg`` (settled for good) no longer holds its key."""
        names, nc = self.names, self._nc
        if nc is None or not msg.subject.startswith(names.ordered_prefix):
            return
        key_hash = msg.subject.removeprefix(names.ordered_prefix)
        try:
            await nc.publish(names.released_prefix + key_hash)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            logger.warning("could not announce a settled ordered delivery: %s", exc)
