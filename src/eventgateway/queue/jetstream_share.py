"""Sharing a blocked subscription's backlog with idle instances of
:class:`~eventgateway.queue.jetstream.JetStreamQueue`.

Instances fetch from the shared consumer in stream order, whatever subscription a
message is for, so what one fetched for a subscription it has no slot for waits there
until its own attempts end: a slow function's backlog gathered on one instance while
the others idled (QA: 3 instances, a 3 s handler with ``concurrency: 2``, 60 events;
one instance made 54 of the calls, 81 s where an even split takes ~30 s).

So while a lease finds a subscription blocked here with messages waiting beyond the
few it will start next (:data:`SHARE_KEEP`), at most every :data:`SHARE_EVERY_S` this
instance asks the server how many pull requests wait on the shared consumer. Each one
beyond its own is another instance that has free slots and nothing to take; that many
waiting messages (the oldest past the kept ones) are carried back to the stream
(:mod:`.jetstream_carry`: attempts kept), where those requests take them. A waiting
request tells of free slots, not of a slot for this subscription, so a message can land
on another busy instance; each is shared at most :data:`MAX_SHARES` times (counted in
its envelope), so a backlog no instance has room for stops moving. Ordered messages are
never shared: a copy would go behind its key's later events.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import msgspec

from eventgateway.queue.jetstream_carry import Carried
from eventgateway.queue.jetstream_keepalive import JetStreamKeepAliveMixin
from eventgateway.queue.jetstream_wire import Envelope, is_nats_error

__all__ = ["MAX_SHARES", "SHARE_EVERY_S", "SHARE_KEEP", "JetStreamShareMixin"]

logger = logging.getLogger(__name__)

# Waiting messages of a blocked subscription kept here whatever others wait: the next it
# starts when a slot frees, without a round trip.
SHARE_KEEP = 2
# How often a blocked backlog is offered: one consumer-info request, and at most one
# message per idle instance, each time.
SHARE_EVERY_S = 0.5
# How many times one delivery may be shared: enough to reach an idle instance past a
# busy one; bounded, so a backlog nobody has room for is not moved on and on.
MAX_SHARES = 2


class JetStreamShareMixin(JetStreamKeepAliveMixin):
    """Offering blocked backlog to idle instances; the queue provides the state."""

    _closed: bool
    _share_every_s = SHARE_EVERY_S  # an attribute, so tests can make it tiny
    _sharer: asyncio.Task[None] | None = None
    _shared_at = float("-inf")  # monotonic: the last offer
    _offers = 0  # times this instance asked how many instances are idle
    _shared = 0  # deliveries it shared
    _share_wake: asyncio.TimerHandle | None = None
    # Names this instance in the envelopes it shares (set on the first share).
    _sharer_id: str | None = None

    # An annotation only (no attribute), so it never shadows the real method in the MRO.
    _open: Callable[[str], object | None]  # the lease mixin's

    def _offer(self, blocked: dict[str, list[int]]) -> None:
        """Start an offer of ``blocked``'s backlog (by subscription, its whole parked
        messages, oldest first) unless one ran within :data:`SHARE_EVERY_S`."""
        waiting = {sub: seqs[SHARE_KEEP:] for sub, seqs in blocked.items()}
        if self._closed or not any(waiting.values()):
            return
        now = time.monotonic()
        wait_s = self._shared_at + self._share_every_s - now
        if wait_s > 0 or (self._sharer and not self._sharer.done()):
            # Look again then, even if nothing else wakes the lease meanwhile.
            if self._share_wake is None:
                self._share_wake = asyncio.get_running_loop().call_later(
                    max(wait_s, 0.01), self._wake_to_share
                )
            return
        self._shared_at = now
        self._sharer = asyncio.create_task(self._share(waiting))

    def _wake_to_share(self) -> None:
        self._share_wake = None
        self._wakeup.fire()

    async def _stop_sharing(self) -> None:
        if self._share_wake is not None:
            self._share_wake.cancel()
            self._share_wake = None
        sharer, self._sharer = self._sharer, None
        if sharer is not None:
            await asyncio.gather(sharer, return_exceptions=True)

    async def _share(self, waiting: dict[str, list[int]]) -> None:
        try:
            idle = await self._idle_instances()
            self._offers += 1
            if idle > 0:
                await self._share_some(waiting, idle)
        except Exception as exc:
            # Nothing was taken out of ``_parked`` unless carried: the backlog stays here.
            if is_nats_error(exc):
                logger.debug("offering blocked deliveries failed: %s", exc)
            else:
                logger.exception("offering blocked deliveries failed")

    async def _idle_instances(self) -> int:
        """Pull requests waiting on the shared consumer, beyond this instance's own."""
        js, names = self._js, self.names
        if js is None:
            return 0
        info = await js.consumer_info(names.deliveries_stream, names.consumer)
        own = 1 if self._open(names.consumer) is not None else 0
        return (info.num_waiting or 0) - own

    async def _share_some(self, waiting: dict[str, list[int]], idle: int) -> None:
        if self._sharer_id is None:
            self._sharer_id = uuid.uuid4().hex[:12]
        me = self._sharer_id
        decode = msgspec.msgpack.Decoder(Envelope).decode
        now = time.monotonic()
        chosen: list[Carried] = []
        touched: dict[int, float] = {}
        # Oldest first over every blocked subscription: the longest-waiting go first.
        for seq in sorted(seq for seqs in waiting.values() for seq in seqs):
            if len(chosen) >= idle:
                break
            entry = self._parked.get(seq)
            if entry is None or seq in self._aside or self._expired(entry[1], now):
                continue  # leased, set aside or given back meanwhile
            msg = entry[0]
            if msg.subject.startswith(self.names.ordered_prefix):
                continue
            envelope = decode(msg.data)
            # A share of this instance's own that came back to it (its own pull request
            # was waiting too) moved nothing: offered again, it is not counted again.
            if envelope.shares + (envelope.shared_by != me) > MAX_SHARES:
                continue
            del self._parked[seq]
            chosen.append((seq, msg, envelope))
            touched[seq] = entry[1]
        if not chosen:
            return

        def shared(envelope: Envelope) -> Envelope:
            moved = envelope.shared_by != me
            return msgspec.structs.replace(envelope, shares=envelope.shares + moved, shared_by=me)

        failed = chosen
        try:
            failed = await self._carry(
                chosen,
                subject=self.names.deliveries_subject,
                kind="share",
                wait_s=lambda _: 0.0,
                revise=shared,
            )
        finally:
            # Not carried: still leased here, parked again (a nak would count an attempt).
            for seq, msg, _ in failed:
                self._parked[seq] = (msg, touched[seq])
            self._shared += len(chosen) - len(failed)
