"""The lease loop: take deliveries from the queue, call functions, settle each delivery.

Concurrency is bounded globally (``concurrency``), per subscription (``per_subscription``;
a subscription whose slots are all busy is excluded from leasing, so a hung endpoint ties
up only its own slots) and per local-runtime function (``function_slots.py``). Each
delivery runs in a task of the task group owned by :meth:`Dispatcher.run`, beside one task
that renews the leases of attempts running long (``dispatch/renewal.py``).

After an attempt the subscription's :class:`~eventgateway.model.entities.RetryPolicy`
decides (``dispatch/retry.py``): ack, retry later, or dead-letter
(``dispatch/settle_failure.py``). At-most-once dispatchers make one attempt and drop
failures.

A lease that fails with :class:`~eventgateway.errors.StoreError` (SQLite locked past its
busy timeout, a store that is down) is logged and tried again after a growing pause;
deliveries in flight carry on meanwhile. Any other error ends :meth:`Dispatcher.run`: the
caller restarts it (``dispatch/restarting.py``) or its process (``call_worker.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from eventgateway.dispatch.function_slots import FunctionSlots
from eventgateway.dispatch.invoke import Invoker, apply_authorization
from eventgateway.dispatch.renewal import Attempt, LeaseRenewer
from eventgateway.dispatch.restarting import Backoff
from eventgateway.dispatch.settle_failure import settle_failure
from eventgateway.errors import StoreError
from eventgateway.model.entities import DEFAULT_RETRY_POLICY
from eventgateway.model.runtime_provider import RuntimeLimit
from eventgateway.queue.base import AttemptRecord, Delivery, DeliveryQueue
from eventgateway.routing.table import RoutingTable

__all__ = ["DispatchHooks", "Dispatcher"]

logger = logging.getLogger(__name__)

# A failed lease is tried again soon (most such errors pass: a lock held a moment too
# long), then less and less often, so a store that stays down is not hammered.
_LEASE_RETRY_FIRST_S = 0.1
_LEASE_RETRY_MAX_S = 5.0
_INTERRUPTED_AGAIN_S = 1.0  # a call the gateway cut off: made again once it may be back


class DispatchHooks:
    """No-op hooks; metrics and logging override what they need. Must not raise."""

    def after_attempt(self, delivery: Delivery, record: AttemptRecord) -> None:
        """Called after every attempt, and for deliveries skipped without one."""

    def after_settle(self, delivery: Delivery, state: str) -> None:
        """Called once a delivery is ``delivered``, ``retrying``, ``dead`` or ``dropped``."""


class Dispatcher:
    """Delivers what the queue holds until :meth:`stop` is called."""

    def __init__(
        self,
        queue: DeliveryQueue,
        invoker: Invoker,
        table: Callable[[], RoutingTable],
        *,
        concurrency: int = 1024,
        per_subscription: int = 128,
        at_most_once: bool = False,
        hooks: DispatchHooks | None = None,
        on_unknown: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._queue = queue
        self._invoker = invoker
        self._table = table
        self._concurrency = concurrency
        self._per_subscription = per_subscription
        # A busy subscription is leased for again only once half its slots are free, so
        # a backlog is leased in batches rather than one delivery per freed slot.
        self._resume_at = per_subscription // 2
        self._at_most_once = at_most_once
        self._hooks = hooks or DispatchHooks()
        # Awaited once before a delivery is skipped for naming an unknown subscription,
        # where the table may lag behind the queue (a worker's copy of the gateway's).
        self._on_unknown = on_unknown
        self._clock = clock
        self._rand = rand
        self._in_flight = 0
        # Attempts done whose outcome is being written (ack, retry, dead letter) hold no
        # slot, but leasing pauses while more than ``concurrency`` of them wait, so memory
        # stays bounded when the store is slow.
        self._settling = 0
        self._per_sub: collections.Counter[str] = collections.Counter()
        # Live set read by the queue on every lease attempt: subscriptions with no free slot.
        self._saturated: set[str] = set()
        self._slot_freed = asyncio.Event()
        self._lease: asyncio.Future[list[Delivery]] | None = None
        self._stopped = asyncio.Event()  # set by stop(); also what pauses wait on
        self._lease_backoff = Backoff(_LEASE_RETRY_FIRST_S, _LEASE_RETRY_MAX_S)
        self._lease_failures = 0
        self._renewer = LeaseRenewer(queue)
        self._functions: FunctionSlots[_Slot] = FunctionSlots(queue.notify)
        self._group: asyncio.TaskGroup | None = None

    @property
    def in_flight(self) -> int:
        """Deliveries being attempted right now."""
        return self._in_flight

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    async def wait_for_stop(self, timeout_s: float) -> bool:
        """Wait until :meth:`stop` is called, at most ``timeout_s``; whether it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout_s)
        return self._stopped.is_set()

    async def run(self) -> None:
        """Lease and deliver until stopped; waits for in-flight deliveries before returning.

        Raises:
            Exception: an error other than a failed lease (a bug); the deliveries in
                flight are cancelled first, and come back when their leases run out.
        """
        renewer = self._renewer
        async with asyncio.TaskGroup() as group:
            self._group = group
            renewing = group.create_task(renewer.run())
            while not self._stopped.is_set():
                free = min(
                    self._concurrency - self._in_flight,
                    2 * self._concurrency - self._in_flight - self._settling,
                )
                if free <= 0:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                self._lease = asyncio.ensure_future(
                    self._queue.lease(free, exclude=self._saturated, room=self._room)
                )
                try:
                    batch = await self._lease
                except asyncio.CancelledError:
                    if self._stopped.is_set() and self._lease.cancelled():
                        break  # stop() cancelled the wait; in-flight work still finishes
                    raise
                except StoreError as exc:
                    await self._pause_after(exc)
                    continue
                if self._lease_failures:
                    logger.info("leasing works again after %d failure(s)", self._lease_failures)
                    self._lease_failures = 0
                    self._lease_backoff.reset()
                now = renewer.clock()  # once per batch: its leases were taken together
                limits = self._table().runtime_limits()
                for delivery in batch:
                    self._take_slot(delivery.subscription_id)
                    slot = _Slot(self, delivery, limits.get(delivery.subscription_id))
                    renewer.started(slot, now)
                    if slot.limit is None or self._functions.admit(slot.limit, slot):
                        group.create_task(self._deliver_and_release(slot))
            # Stopped leasing: the leases of what is still in flight are kept until it is
            # settled; then the renewer goes. Held deliveries are handed back unstarted.
            if abandoned := [held.abandon() for held in self._functions.drop_held()]:
                with contextlib.suppress(StoreError):  # else their leases run out
                    await self._queue.release(abandoned)
            await renewer.drained()
            renewing.cancel()

    def stop(self) -> None:
        """Stop leasing; :meth:`run` returns once in-flight deliveries are settled (the
        queue stays open meanwhile; a lease being waited for is cancelled)."""
        self._stopped.set()
        self._slot_freed.set()
        if self._lease is not None and not self._lease.done():
            self._lease.cancel()

    async def _pause_after(self, error: StoreError) -> None:
        # Not fatal: the store may be busy or briefly down; ending run() would cancel what
        # is in flight and stop delivery for good while the Events API keeps accepting.
        self._lease_failures += 1
        pause_s = self._lease_backoff.next_s()
        logger.warning(
            "leasing deliveries failed (%d time(s) in a row); trying again in %.1f s, "
            "deliveries in flight carry on: %s",
            self._lease_failures,
            pause_s,
            error,
        )
        await self.wait_for_stop(pause_s)

    def _slots(self, subscription_id: str) -> int:
        # A local-runtime function starts at most its ``concurrency`` (function_slots.py).
        limit, cap = self._table().runtime_limits().get(subscription_id), self._per_subscription
        return cap if limit is None else min(limit.concurrency, cap)

    def _room(self, subscription_id: str) -> int:
        # Called by the queue, possibly on its writer thread: reads of a Counter and dicts.
        room = self._slots(subscription_id) - self._per_sub[subscription_id]
        limit = self._table().runtime_limits().get(subscription_id)
        return room if limit is None else min(room, self._functions.room(limit))

    def _function_done(self, slot: _Slot) -> None:
        # Its invocation is over (or never happened): a held delivery takes its place.
        assert slot.limit is not None
        following = self._functions.release(slot.limit, start_held=not self._stopped.is_set())
        if following is not None and self._group is not None:
            self._group.create_task(self._deliver_and_release(following))

    def _take_slot(self, subscription_id: str) -> None:
        self._in_flight += 1
        self._per_sub[subscription_id] += 1
        if self._per_sub[subscription_id] >= self._slots(subscription_id):
            self._saturated.add(subscription_id)

    def _release_slot(self, subscription_id: str) -> None:
        self._in_flight -= 1
        self._per_sub[subscription_id] -= 1
        if self._per_sub[subscription_id] <= 0:
            del self._per_sub[subscription_id]
        resume_at = min(self._resume_at, self._slots(subscription_id) // 2)
        if subscription_id in self._saturated and self._per_sub[subscription_id] <= resume_at:
            self._saturated.discard(subscription_id)
            self._queue.notify()  # its waiting deliveries may be leased again
        self._slot_freed.set()

    async def _deliver_and_release(self, slot: _Slot) -> None:
        delivery = slot.delivery
        try:
            await self._deliver(delivery, slot)
        except StoreError as exc:  # a full disk, a store that is down: no traceback each
            logger.warning(
                "delivery %s (event %s, subscription %s) could not be settled; its lease "
                "will expire and it will be retried: %s",
                delivery.id,
                delivery.event.id,
                delivery.subscription_id,
                exc,
            )
        except Exception:  # a hook or queue failure must not take the loop down
            logger.exception(
                "delivery %s (event %s, subscription %s) failed unexpectedly; "
                "its lease will expire and it will be retried",
                delivery.id,
                delivery.event.id,
                delivery.subscription_id,
            )
        finally:
            slot.settled()

    async def _skip(self, delivery: Delivery, reason: str) -> None:
        record = AttemptRecord(
            started_at=self._clock(), duration_s=0.0, outcome="skipped", error=reason
        )
        self._hooks.after_attempt(delivery, record)
        await self._queue.ack(delivery, record)
        self._hooks.after_settle(delivery, "skipped")

    async def _deliver(self, delivery: Delivery, slot: _Slot) -> None:
        target = self._table().target(delivery.space, delivery.subscription_id)
        if target is None and self._on_unknown is not None:
            await self._on_unknown()
            target = self._table().target(delivery.space, delivery.subscription_id)
        if target is None:
            await self._skip(delivery, "subscription no longer exists")
            return
        event = delivery.event
        if target.authorizer_id is not None:
            verdict = await self._invoker.authorize(target.authorizer, event, delivery.auth_request)
            if not verdict.allowed:
                logger.info(
                    "event %s denied for subscription %s by authorizer %s: %s",
                    event.id,
                    delivery.subscription_id,
                    target.authorizer_id,
                    verdict.error,
                )
                await self._skip(delivery, f"denied by authorizer: {verdict.error}")
                return
            event = apply_authorization(event, verdict.authorization)
        policy = target.subscription.retry_policy or DEFAULT_RETRY_POLICY
        started_at = self._clock()
        outcome = await self._invoker.call(
            target.function,
            event,
            sync=False,
            function_id=delivery.function_id,
            timeout_s=policy.attempt_timeout_ms / 1000,
            delivery_id=delivery.id,
            # An authorizer's verdict changed the event; otherwise the stored form is it.
            encoded=delivery.body if event is delivery.event else None,
        )
        slot.attempted()  # the subscriber is free again; what follows is our own write
        if outcome.failure is not None and outcome.failure.interrupted and not self._at_most_once:
            # The gateway cut the call off, not the function: made again, not counted.
            logger.info("delivery %s interrupted (%s): again in 1 s", delivery.id, outcome.error)
            await self._queue.release([delivery], _INTERRUPTED_AGAIN_S)
            return
        record = outcome.record(started_at)
        self._hooks.after_attempt(delivery, record)
        if outcome.ok:
            await self._queue.ack(delivery, record)
            self._hooks.after_settle(delivery, "delivered")
            return
        if self._at_most_once:
            logger.warning(
                "at-most-once delivery %s of event %s to %s/%s failed; dropped: %s",
                delivery.id,
                event.id,
                delivery.space,
                delivery.function_id,
                outcome.error,
            )
            await self._queue.ack(delivery, record)
            self._hooks.after_settle(delivery, "dropped")
            return
        await settle_failure(
            self._queue,
            self._hooks,
            delivery,
            event,
            policy,
            outcome,
            record,
            # Its age now, when the attempt is over: decide() adds the delay, so maxAge
            # bounds when the retry would start. Taken at the start, an attempt of up to
            # attemptTimeoutMs could push the retry past maxAge.
            age_s=max(0.0, self._clock() - delivery.accepted_at),
            rand=self._rand,
        )


class _Slot(Attempt):
    """One delivery's hold on the dispatcher: a slot while attempted, then while settling;
    its lease is renewed until it is settled. ``limit``: its local-runtime function's."""

    __slots__ = ("_dispatcher", "_state", "_subscription_id", "limit")

    def __init__(
        self, dispatcher: Dispatcher, delivery: Delivery, limit: RuntimeLimit | None = None
    ) -> None:
        self.delivery = delivery
        self.limit = limit
        self._dispatcher = dispatcher
        self._subscription_id = delivery.subscription_id
        self._state = 0  # 0: attempting (or held), 1: settling, 2: done

    def attempted(self) -> None:
        if self._state == 0:
            self._state = 1
            dispatcher = self._dispatcher
            dispatcher._settling += 1
            dispatcher._release_slot(self._subscription_id)
            if self.limit is not None:
                dispatcher._function_done(self)

    def abandon(self) -> Delivery:
        """A held delivery the stopping dispatcher never starts (to hand back)."""
        if self._state == 0:
            self._dispatcher._release_slot(self._subscription_id)
            self._dispatcher._renewer.finished(self)
        self._state = 2
        return self.delivery

    def settled(self) -> None:
        if self._state == 0:
            self._dispatcher._release_slot(self._subscription_id)
            if self.limit is not None:
                self._dispatcher._function_done(self)
        elif self._state == 1:
            self._dispatcher._settling -= 1
            self._dispatcher._slot_freed.set()
        if self._state != 2:
            self._dispatcher._renewer.finished(self)
        self._state = 2
