"""Sharing a blocked subscription's backlog with instances of
:class:`~eventgateway.queue.jetstream.JetStreamQueue` that have room for it.

Instances fetch from the shared consumer in stream order, whatever subscription a
message is for, so what one fetched for a subscription it has no slot for waits there
until its own attempts end: a burst for a slow function gathered on one instance while
the others idled (QA: 3 instances, a 3 s handler with ``concurrency: 2``, 60 events in
one batch; one instance made 58 of the calls, 87 s where an even split takes 30 s).

So while a lease finds subscriptions blocked here with messages waiting beyond the few
it will start next (:data:`SHARE_KEEP`), at most every :data:`SHARE_EVERY_S` this
instance asks the others, on core NATS (``<prefix>.room``), how many deliveries of
those subscriptions each would start now: an instance answers only while a lease of its
waits for work, with its dispatcher's room for each (``room``, and nothing for an
excluded one). For each instance with room (and one more if this instance's own pull
request waits too) one of the oldest waiting messages is carried back to the stream
(:mod:`.jetstream_carry`: attempts kept), where the waiting pull requests (a batch of
one each) take them: one each offer, since a copy beyond those goes to whichever
instance asks next, most likely the one that just took one.

A copy goes to whichever pull request waits first, so it can land on a busy instance
(or back here); each delivery moves between instances at most :data:`MAX_SHARES` times
(counted in its envelope, with the instance that shared it last: a copy that lands back
on its own sharer moved nothing), so a backlog is never moved on and on. Ordered
messages are never shared: a copy would go behind its key's later events.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Collection

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from eventgateway.queue.base import Room
from eventgateway.queue.jetstream_carry import Carried
from eventgateway.queue.jetstream_keepalive import JetStreamKeepAliveMixin
from eventgateway.queue.jetstream_wire import Envelope, is_nats_error

__all__ = ["MAX_SHARES", "SHARE_EVERY_S", "SHARE_KEEP", "JetStreamShareMixin"]

logger = logging.getLogger(__name__)

# Waiting messages of a blocked subscription kept here whatever others have room for:
# the next it starts when a slot frees, without a round trip.
SHARE_KEEP = 2
# How often a blocked backlog is offered: one question to the other instances each time.
SHARE_EVERY_S = 0.25
# How long an offer collects the answers (local instances answer within a millisecond).
ANSWER_WAIT_S = 0.05
# How many times one delivery may move to another instance: enough to reach one with
# room past a busy one that took it; bounded, so a backlog is not moved on and on.
MAX_SHARES = 2

_Question = tuple[str, list[str]]  # the asker's id, the subscriptions
_question = msgspec.json.Decoder(_Question).decode
_answer = msgspec.json.Decoder(dict[str, int]).decode


class JetStreamShareMixin(JetStreamKeepAliveMixin):
    """Offering blocked backlog to instances with room; the queue provides the state."""

    _nc: Client | None
    _closed: bool
    _share_every_s = SHARE_EVERY_S  # an attribute, so tests can make it tiny
    _sharer: asyncio.Task[None] | None = None
    _shared_at = float("-inf")  # monotonic: the last offer
    _share_wake: asyncio.TimerHandle | None = None
    _offers = 0  # offers made (for tests)
    _shared = 0  # deliveries moved away by them
    # What the last lease was given: this instance's answer to another's offer.
    _room_now: Room | None = None
    _excluded_now: frozenset[str] = frozenset()
    _id: str | None = None  # names this instance in questions and shared envelopes

    # An annotation only (no attribute), so it never shadows the real method in the MRO.
    _open: Callable[[str], object | None]  # the lease mixin's

    @property
    def _instance_id(self) -> str:
        if self._id is None:
            self._id = uuid.uuid4().hex[:12]
        return self._id

    def _offer(
        self, blocked: dict[str, list[int]], excluded: frozenset[str], room: Room | None
    ) -> None:
        """Note the lease's room, and start an offer of ``blocked``'s backlog (by
        subscription, its whole parked messages, oldest first) unless one ran within
        :data:`SHARE_EVERY_S`."""
        self._room_now, self._excluded_now = room, excluded
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

    def _room_for(self, subscription_id: str) -> int:
        """How many deliveries of the subscription this instance would start now."""
        if not self._leasing or self._closed or subscription_id in self._excluded_now:
            return 0
        room = self._room_now
        return 1 if room is None else room(subscription_id)

    async def _room_asked(self, msg: Msg) -> None:
        """Answer another instance's offer: room for each subscription asked about."""
        nc = self._nc
        try:
            asker, subscriptions = _question(msg.data)
        except msgspec.DecodeError:
            return
        if nc is None or not msg.reply or asker == self._instance_id:
            return
        rooms = {sub: n for sub in subscriptions if (n := self._room_for(sub)) > 0}
        if rooms:
            try:
                await nc.publish(msg.reply, msgspec.json.encode(rooms))
            except Exception as exc:
                if not is_nats_error(exc):
                    raise

    async def _room_elsewhere(self, subscriptions: Collection[str]) -> dict[str, int]:
        """How many other instances have room for each of ``subscriptions``, of those
        that answered within :data:`ANSWER_WAIT_S`."""
        nc = self._nc
        if nc is None:
            return {}
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        rooms: dict[str, int] = {}
        try:
            question = msgspec.json.encode((self._instance_id, sorted(subscriptions)))
            await nc.publish(self.names.room_subject, question, reply=inbox)
            deadline = time.monotonic() + ANSWER_WAIT_S
            while (left := deadline - time.monotonic()) > 0:
                try:
                    answer = await sub.next_msg(timeout=left)
                except TimeoutError:
                    break
                try:
                    for subscription_id, n in _answer(answer.data).items():
                        rooms[subscription_id] = rooms.get(subscription_id, 0) + (n > 0)
                except msgspec.DecodeError:
                    continue
        finally:
            await sub.unsubscribe()
        return rooms

    async def _share(self, waiting: dict[str, list[int]]) -> None:
        try:
            takers = await self._room_elsewhere([sub for sub, seqs in waiting.items() if seqs])
            self._offers += 1
            if takers:
                # One copy per instance with room: each has one pull request waiting at
                # most (a batch of 1), and so may this instance; a copy beyond those
                # goes to whichever asks next, most likely the one that just took one.
                own = self._open(self.names.consumer) is not None
                await self._share_some(waiting, {s: n + own for s, n in takers.items()})
        except Exception as exc:
            # Nothing was taken out of ``_parked`` unless carried: the backlog stays here.
            if is_nats_error(exc):
                logger.debug("offering blocked deliveries failed: %s", exc)
            else:
                logger.exception("offering blocked deliveries failed")

    async def _share_some(self, waiting: dict[str, list[int]], counts: dict[str, int]) -> None:
        me = self._instance_id
        decode = msgspec.msgpack.Decoder(Envelope).decode
        now = time.monotonic()
        chosen: list[Carried] = []
        touched: dict[int, float] = {}
        for subscription_id, seqs in waiting.items():
            left = counts.get(subscription_id, 0)
            for seq in seqs:  # oldest first: the longest-waiting go first
                if left <= 0:
                    break
                entry = self._parked.get(seq)
                if entry is None or seq in self._aside or self._expired(entry[1], now):
                    continue  # leased, set aside or given back meanwhile
                msg = entry[0]
                if msg.subject.startswith(self.names.ordered_prefix):
                    continue
                envelope = decode(msg.data)
                # A share of this instance's own that came back to it (its own pull
                # request was waiting too) moved nothing: offered again, not counted.
                if envelope.shares + (envelope.shared_by != me) > MAX_SHARES:
                    continue
                del self._parked[seq]
                chosen.append((seq, msg, envelope))
                touched[seq] = entry[1]
                left -= 1
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
