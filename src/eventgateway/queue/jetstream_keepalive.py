"""Keeping fetched-but-not-leased messages of
:class:`~eventgateway.queue.jetstream.JetStreamQueue` alive: parked, set aside and held.

Each is leased to this instance on the server (``ack_wait``) from the moment it is fetched.
Were its ``ack_wait`` to run out, the server would hand it out again with its delivery
count raised, and the count is the attempt number the retry policy reads: an attempt that
never happened (enough of them, and a delivery's first real failure is its last). So a
task of the queue's own (started by ``open``, ended by ``close``) sends ``in_progress()``
every ``lease_s / 6`` to each one not kept alive for ``lease_s / 3``. It used to run only inside
``lease()``, which a dispatcher with every slot busy does not call: the messages waiting
behind it ran out, came back counted, and were delivered twice (the copy parked here and
the redelivery).

Not handed back while this instance is busy, for another to take: a ``nak`` raises the
count like every redelivery (nats-server 2.9.10, measured: three naks, count 4), and a
carried copy (:mod:`.jetstream_carry`) costs three round trips. A saturated instance
keeps only what its last lease fetched beyond what it took (at most one lease's worth
per consumer), what its busy subscriptions wait for (parked or set
aside, :mod:`.jetstream_aside`) and held ordered messages; they wait for its slots, at
most until one of its attempts ends. They do go back when nobody uses the queue: with no
``lease()`` waiting or called, and no lease renewed (``extend``), for a whole ``lease_s``,
nothing here will take them (a dispatcher that stopped or died with the queue left open),
so they are handed back: carried to new messages with their attempts, ordered ones
``nak``-ed (one count, as a lease running out would cost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from eventgateway.queue.jetstream_aside import JetStreamAsideMixin
from eventgateway.queue.jetstream_carry import JetStreamCarryMixin
from eventgateway.queue.jetstream_wire import is_nats_error

__all__ = ["JetStreamKeepAliveMixin"]

logger = logging.getLogger(__name__)


class JetStreamKeepAliveMixin(JetStreamAsideMixin, JetStreamCarryMixin):
    """The keep-alive task; the queue provides the state."""

    _lease_s: float
    _parked: dict[int, tuple[Msg, float]]
    _held: dict[int, tuple[Msg, float]]  # the ordering mixin's
    _keeper: asyncio.Task[None] | None = None
    _leasing = 0  # ``lease()`` calls waiting right now
    _used_at = float("-inf")  # monotonic: the last ``lease()`` or ``extend()``

    # Annotations only (no attribute), so they never shadow the real methods in the MRO.
    _recheck: Callable[[], Awaitable[None]]  # the ordering mixin's

    def _start_keeping_alive(self) -> None:
        self._used_at = time.monotonic()
        self._keeper = asyncio.create_task(self._keep_alive_loop())

    async def _stop_keeping_alive(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep_alive_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 6)
            try:
                if self._leasing or time.monotonic() - self._used_at < self._lease_s:
                    await self._keep_parked_alive()
                else:
                    await self._give_back(logged=True)
            except Exception:
                # A bug here must not end the keep-alive for good: the next tick tries again.
                logger.exception("keeping fetched deliveries alive failed")

    def _expired(self, touched: float, now: float) -> bool:
        """Whether ``ack_wait`` may have run out (the server may have handed it out again):
        then this copy is stale, and a nak or ack by it could settle the new lease."""
        return now - touched >= self._lease_s

    async def _keep_parked_alive(self) -> None:
        now = time.monotonic()
        for kept in (self._parked, self._held):
            for seq, (msg, touched) in list(kept.items()):
                if self._expired(touched, now):
                    # Missed (NATS was unreachable): the server has it back; its
                    # redelivery is fetched like any message, counted.
                    self._drop(kept, seq, msg)
                    continue
                if now - touched < self._lease_s / 3:
                    continue
                try:
                    await msg.in_progress()
                except Exception as exc:
                    if not is_nats_error(exc):
                        raise
                    return  # disconnected: the next tick tries again, within ack_wait
                if kept.get(seq, (None,))[0] is msg:  # not leased or replaced meanwhile
                    kept[seq] = (msg, now)
        await self._recheck()

    def _drop(self, kept: dict[int, tuple[Msg, float]], seq: int, msg: Msg) -> None:
        if kept.get(seq, (None,))[0] is msg:
            del kept[seq]
            self._aside.pop(seq, None)

    async def _give_back(self, *, logged: bool) -> None:
        """Hand every parked, set-aside and held message back to the stream
        (:meth:`~eventgateway.queue.jetstream_carry.JetStreamCarryMixin._hand_back`)."""
        now = time.monotonic()
        fetched = [
            (kept, seq, entry) for kept in (self._parked, self._held) for seq, entry in kept.items()
        ]
        if not fetched:
            return
        if logged:
            logger.info(
                "handing back %d fetched deliveries: nothing leased or renewed them for %.0f s",
                len(fetched),
                self._lease_s,
            )
        msgs: dict[int, Msg] = {}
        aside: list[int] = []
        for kept, seq, (msg, touched) in fetched:
            if seq in self._aside:
                aside.append(seq)
            self._drop(kept, seq, msg)
            if not self._expired(touched, now):
                msgs[seq] = msg
        # A set-aside message's event was dropped to save memory; its copy needs it.
        await self._read_back_data([seq for seq in aside if seq in msgs], msgs)
        await self._hand_back(list(msgs.items()), 0.0)
