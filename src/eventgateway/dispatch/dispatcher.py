"""The lease loop: take deliveries from the queue, call functions, settle each delivery.

Concurrency is bounded globally (``concurrency``); each delivery runs in its own task in
a task group owned by :meth:`Dispatcher.run`, so shutdown cancels nothing it does not own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from eventgateway.dispatch.invoke import Invoker, Outcome, apply_authorization
from eventgateway.queue.base import Delivery, DeliveryQueue
from eventgateway.routing.table import RoutingTable

__all__ = ["DispatchHooks", "Dispatcher"]

logger = logging.getLogger(__name__)


class DispatchHooks:
    """No-op hooks; metrics and the delivery log override what they need."""

    def after_attempt(self, delivery: Delivery, outcome: Outcome) -> None:
        """Called after every attempt, successful or not."""

    def after_skip(self, delivery: Delivery, reason: str) -> None:
        """Called when a delivery is dropped without an attempt (e.g. denied by an authorizer)."""


class Dispatcher:
    """Delivers what the queue holds until :meth:`stop` is called."""

    def __init__(
        self,
        queue: DeliveryQueue,
        invoker: Invoker,
        table: Callable[[], RoutingTable],
        *,
        concurrency: int = 256,
        hooks: DispatchHooks | None = None,
    ) -> None:
        self._queue = queue
        self._invoker = invoker
        self._table = table
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._hooks = hooks or DispatchHooks()
        self._stopping = False

    async def run(self) -> None:
        """Lease and deliver until stopped; waits for in-flight deliveries before returning."""
        async with asyncio.TaskGroup() as group:
            while not self._stopping:
                await self._slots.acquire()
                self._slots.release()
                batch = await self._queue.lease(self._concurrency)
                for delivery in batch:
                    await self._slots.acquire()
                    group.create_task(self._deliver_and_release(delivery))

    def stop(self) -> None:
        """Stop leasing; :meth:`run` returns once in-flight deliveries are settled."""
        self._stopping = True

    async def _deliver_and_release(self, delivery: Delivery) -> None:
        try:
            await self._deliver(delivery)
        except Exception:  # a hook or queue failure must not take the loop down
            logger.exception(
                "delivery %s of subscription %s failed unexpectedly",
                delivery.id,
                delivery.subscription_id,
            )
        finally:
            self._slots.release()

    async def _deliver(self, delivery: Delivery) -> None:
        table = self._table()
        target = table.target(delivery.space, delivery.subscription_id)
        if target is None:
            # The subscription was deleted after the event was accepted.
            self._hooks.after_skip(delivery, "subscription no longer exists")
            await self._queue.ack(delivery)
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
                self._hooks.after_skip(delivery, f"denied by authorizer: {verdict.error}")
                await self._queue.ack(delivery)
                return
            event = apply_authorization(event, verdict.authorization)
        outcome = await self._invoker.call(
            target.function, event, sync=False, function_id=delivery.function_id
        )
        self._hooks.after_attempt(delivery, outcome)
        if outcome.ok:
            await self._queue.ack(delivery)
        else:
            logger.warning(
                "delivery %s of event %s to %s/%s failed (attempt %d): %s",
                delivery.id,
                event.id,
                delivery.space,
                delivery.function_id,
                delivery.attempt + 1,
                outcome.error,
            )
            await self._queue.dead_letter(delivery, outcome.error)
