"""After a failed attempt of a durable delivery: retry it later or dead-letter it, as its
subscription's retry policy decides (``dispatch/retry.py``).

Before a delivery is dead-lettered for running out of attempts, the queue is asked to
:meth:`~eventgateway.queue.base.DeliveryQueue.recount` them: on JetStream a lease counts
every redelivery of a message as an attempt, so what a ``kill -9``-ed instance had
fetched came back an attempt short (with ``maxAttempts: 2``, dead-lettered after one real
call). Only there, where it changes the outcome: a delivery, a retry below the limit, a
404 or a delivery past its maximum age pays nothing; a redelivered one about to be
dead-lettered for attempts pays one read of its event's history (``docs/cluster.md``).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from eventgateway.dispatch.retry import RetryDecision, decide

if TYPE_CHECKING:
    from eventgateway.dispatch.dispatcher import DispatchHooks
    from eventgateway.dispatch.invoke import Outcome
    from eventgateway.dispatch.retry import Rand
    from eventgateway.events.model import CloudEvent
    from eventgateway.model.entities import RetryPolicy
    from eventgateway.queue.base import AttemptRecord, Delivery, DeliveryQueue

__all__ = ["settle_failure"]

logger = logging.getLogger(__name__)


async def settle_failure(
    queue: DeliveryQueue,
    hooks: DispatchHooks,
    delivery: Delivery,
    event: CloudEvent,
    policy: RetryPolicy,
    outcome: Outcome,
    record: AttemptRecord,
    *,
    age_s: float,
    rand: Rand = random.random,
) -> None:
    """Retry ``delivery`` later, or dead-letter it, after its failed attempt ``record``.

    Args:
        queue: the queue that leased the delivery; it is settled there.
        hooks: told the settle's state (``retrying`` or ``dead``).
        delivery: the leased delivery; ``delivery.attempt`` attempts were made before.
        event: the event as it was sent (an authorizer may have changed it).
        policy: the subscription's retry policy.
        outcome: the failed attempt's result.
        record: the attempt as the delivery log keeps it.
        age_s: seconds since the delivery was accepted, when the attempt ended.
        rand: the jitter's source.

    Raises:
        StoreError: the queue could not settle it; it comes back after its lease.
    """
    attempts_made = delivery.attempt + 1
    decision = _decide(policy, outcome, attempts_made, age_s, rand)
    if (
        not decision.retry
        and outcome.retryable
        and attempts_made >= policy.max_attempts
        and delivery.attempt > 0
    ):
        made_before = await queue.recount(delivery)
        if made_before < delivery.attempt:
            attempts_made = made_before + 1
            decision = _decide(policy, outcome, attempts_made, age_s, rand)
            logger.info(
                "delivery %s of event %s to %s/%s: %d of its %d counted attempts were "
                "never made (a crashed instance's fetch); %s",
                delivery.id,
                event.id,
                delivery.space,
                delivery.function_id,
                delivery.attempt - made_before,
                delivery.attempt + 1,
                "retrying" if decision.retry else "still giving up",
            )
    if decision.retry:
        logger.info(
            "delivery %s of event %s to %s/%s failed (attempt %d), retry in %.1f s: %s",
            delivery.id,
            event.id,
            delivery.space,
            delivery.function_id,
            attempts_made,
            decision.delay_s,
            outcome.error,
        )
        await queue.retry_later(delivery, decision.delay_s, record)
        hooks.after_settle(delivery, "retrying")
    else:
        logger.warning(
            "delivery %s of event %s to %s/%s dead-lettered after %d attempt(s): %s (%s)",
            delivery.id,
            event.id,
            delivery.space,
            delivery.function_id,
            attempts_made,
            decision.reason,
            outcome.error,
        )
        await queue.dead_letter(delivery, f"{decision.reason}: {outcome.error}", record)
        hooks.after_settle(delivery, "dead")


def _decide(
    policy: RetryPolicy, outcome: Outcome, attempts_made: int, age_s: float, rand: Rand
) -> RetryDecision:
    return decide(
        policy,
        attempts_made=attempts_made,
        age_s=age_s,
        retryable=outcome.retryable,
        status=outcome.reply.status if outcome.reply is not None else None,
        retry_after_s=outcome.retry_after_s,
        rand=rand,
    )
