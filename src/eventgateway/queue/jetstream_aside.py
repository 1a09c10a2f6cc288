"""Parked messages of blocked subscriptions, set aside so the lease fetches past them.

The consumer hands messages out in stream order. While the dispatcher has no slot for a
subscription (``exclude``, or ``room`` at 0) its fetched messages stay parked; when the
1,000 parked were all such messages, the lease stopped fetching, and one hung function
with a backlog stalled every other subscription behind it (head-of-line blocking).

So a blocked subscription keeps at most :data:`KEEP_PER_BLOCKED` messages whole (enough
to refill its slots at once when they free); the rest are *set aside*: still leased
here and kept alive like any parked message, but with their event dropped from memory,
and not counted against the parked bound. When the subscription has room again they
are read back from the stream (a direct get each, by stream sequence) before a lease
hands them out.

Each blocked subscription sets aside at most :data:`ASIDE_PER_SUBSCRIPTION` on one
instance (and all together at most :data:`MAX_ASIDE`); its further unordered messages
are *deferred* (:mod:`.jetstream_defer`): copied to ``<prefix>.deferred`` and acked, so
they leave the shared consumer's in-flight count and this instance's memory, and come
back after a cooldown. Without that a hung subscription with a big backlog filled
``MAX_ASIDE`` in the end, and then the lease fetched nothing for anyone. Ordered
messages are never deferred (their key's order would break); their own consumer's
``max_ack_pending`` bounds them.

Not ``nak(delay)`` instead: on nats-server 2.9 a nak-delayed message still counts
against the consumer's ``max_ack_pending`` until it is redelivered, so it frees nothing
there that setting it aside does not; and every redelivery raises the delivery count,
which is the attempt number the retry policy reads, so a subscription waiting for
slots would burn its attempts without being attempted (the reason held ordered
messages use ``in_progress()`` too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from eventgateway.queue.base import Room
from eventgateway.queue.jetstream_wire import Names, is_nats_error

__all__ = ["ASIDE_PER_SUBSCRIPTION", "KEEP_PER_BLOCKED", "MAX_ASIDE", "JetStreamAsideMixin"]

logger = logging.getLogger(__name__)

# Whole messages a blocked subscription keeps parked: the dispatcher's default slots per
# subscription, so freed slots are refilled without a round trip to the stream.
KEEP_PER_BLOCKED = 128
# Set-aside messages one instance holds at most (~1 KB each with their bookkeeping).
MAX_ASIDE = 100_000
# Set-aside messages one blocked subscription holds on one instance; the rest are
# deferred. Set-aside ones come back the moment the subscription has room, deferred ones
# after their cooldown (15 s at first), so this is the backlog a subscription may build
# while it is stuck for a moment and still catch up at once: 10 s at 1,000 events/s,
# ~10 MB of memory.
ASIDE_PER_SUBSCRIPTION = 10_000


class JetStreamAsideMixin:
    """Setting aside and reading back parked messages; the queue provides the state."""

    names: Names
    _js: JetStreamContext | None
    _parked: dict[int, tuple[Msg, float]]
    _max_parked: int
    _lease_s: float
    _aside_per_subscription = ASIDE_PER_SUBSCRIPTION  # an attribute, so tests can lower it
    _deferring: int  # the deferral mixin's: taken out of ``_parked``, not deferred yet
    # Parked messages whose event was dropped: stream sequence -> subscription id. They
    # stay in ``_parked`` (kept alive, and given back on close with the others).
    _aside_subs: dict[int, str] | None = None

    @property
    def _aside(self) -> dict[int, str]:
        if self._aside_subs is None:
            self._aside_subs = {}
        return self._aside_subs

    # Annotations only (no attribute), so they never shadow the real methods in the MRO.
    _defer: Callable[[list[tuple[int, Msg, float]]], None]  # the deferral mixin's

    def _parking_free(self) -> int:
        """How many more messages a fetch may park: the parked bound counts whole ones,
        and those on their way to being deferred (so a slow deferral slows the fetch)."""
        if len(self._aside) >= MAX_ASIDE:
            return 0
        return self._max_parked - (len(self._parked) - len(self._aside)) - self._deferring

    def _set_aside(self, blocked: dict[str, list[int]]) -> None:
        """Drop the event of each blocked subscription's parked messages past its first
        few (``blocked``: its whole parked ones, oldest first), and defer its unordered
        ones past :attr:`_aside_per_subscription` set aside."""
        if not blocked:
            return
        # Blocked subscriptions together keep at most half the parked bound whole, so
        # however many are blocked a fetch always has room.
        keep = max(1, min(KEEP_PER_BLOCKED, self._max_parked // (2 * len(blocked))))
        aside = self._aside
        held = Counter(aside.values())
        ordered = self.names.ordered_prefix
        deferred: list[tuple[int, Msg, float]] = []
        for subscription_id, seqs in blocked.items():
            room = self._aside_per_subscription - held[subscription_id]
            for seq in seqs[keep:]:
                msg, touched = self._parked[seq]
                full = room <= 0 or len(aside) >= MAX_ASIDE
                if full and not msg.subject.startswith(ordered):
                    # Decided now, while it has its data: the deferred copy is made of it.
                    del self._parked[seq]
                    deferred.append((seq, msg, touched))
                    continue
                room -= 1
                # Headers too (nothing reads them after the fetch): a message without its
                # data held 1,000 B, without its headers also 650 B (measured).
                msg.data, msg.headers = b"", None
                aside[seq] = subscription_id
        if deferred:
            self._defer(deferred)

    def _put_aside(self, entries: list[tuple[int, Msg, float, str]]) -> None:
        """Set aside again messages whose deferral failed (``(seq, message, last
        keep-alive, subscription)``): still leased here, so no attempt is lost."""
        now = time.monotonic()
        for seq, msg, touched, subscription_id in entries:
            if now - touched >= self._lease_s:
                continue  # not kept alive meanwhile: the server has it back, counted
            msg.data, msg.headers = b"", None
            self._parked[seq] = (msg, touched)
            self._aside[seq] = subscription_id

    async def _read_back(self, exclude: frozenset[str], room: Room | None) -> None:
        """Read back the events of set-aside messages whose subscription has room now,
        oldest first, at most its room (and :data:`KEEP_PER_BLOCKED`) each."""
        aside, js = self._aside, self._js
        if not aside or js is None:
            return
        left: dict[str, int] = {}
        chosen: list[int] = []
        for seq in sorted(aside):
            subscription_id = aside[seq]
            if subscription_id in exclude:
                continue
            if subscription_id not in left:
                left[subscription_id] = min(
                    KEEP_PER_BLOCKED, room(subscription_id) if room else KEEP_PER_BLOCKED
                )
            if left[subscription_id] > 0:
                left[subscription_id] -= 1
                chosen.append(seq)
        if not chosen:
            return
        stream = self.names.deliveries_stream
        stored = await asyncio.gather(
            *(js.get_msg(stream, seq=seq) for seq in chosen), return_exceptions=True
        )
        for seq, got in zip(chosen, stored, strict=True):
            entry = self._parked.get(seq)
            if entry is None or seq not in aside:
                continue  # given back meanwhile (the queue closed)
            if isinstance(got, NotFoundError):
                # Removed from the stream by hand (a purge): nothing is left to deliver.
                del self._parked[seq], aside[seq]
                continue
            if isinstance(got, BaseException):
                if not is_nats_error(got):
                    raise got
                # Still leased and kept alive here: the next look tries again.
                logger.warning("could not read back set-aside delivery %d: %s", seq, got)
                continue
            entry[0].data = got.data or b""
            del aside[seq]
