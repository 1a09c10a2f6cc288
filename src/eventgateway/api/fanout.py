"""One accepted event → its async deliveries, split by queue (part of the Events API hot path).

A subscription with a ``filter`` gets the event only when its compiled filter
(:attr:`~eventgateway.routing.table.Target.matcher`) matches; the event's filter view is
built once, for the first filtered subscription, and shared by the others. A subscription
without a filter costs one attribute test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from eventgateway.events.http import HttpRequest, authorizer_request
from eventgateway.events.model import CloudEvent
from eventgateway.queue.base import Accepted, NewDelivery
from eventgateway.routing.filter_budget import MAX_FILTER_STEPS
from eventgateway.routing.filters import EventView
from eventgateway.routing.table import Target

__all__ = ["plan_deliveries"]

logger = logging.getLogger(__name__)

_WARN_EVERY_S: Final = 60.0
_last_warning_s = [float("-inf")]  # one warning a minute: a sender could repeat such events


def _warn_exceeded(subscription_id: str, event_id: str) -> None:
    now_s = time.monotonic()
    if now_s - _last_warning_s[0] >= _WARN_EVERY_S:
        _last_warning_s[0] = now_s
        logger.warning(
            "event %r: its filters ran past their work budget (%d checks); subscription %r "
            "and any filtered one after it did not get it (docs/filters.md, Cost)",
            event_id,
            MAX_FILTER_STEPS,
            subscription_id,
        )


def plan_deliveries(
    event: CloudEvent,
    targets: tuple[Target, ...],
    request: HttpRequest,
    durable: list[Accepted],
    fast: list[Accepted],
    filtered: Callable[[str], None],
) -> None:
    """Split one event's deliveries into the durable and the at-most-once queue.

    Args:
        event: the event.
        targets: the async subscriptions of its route.
        request: the request it came in (authorizers get it).
        durable: gets the event's at-least-once deliveries, if any.
        fast: gets its at-most-once deliveries, if any.
        filtered: called with the subscription's space for each subscription whose filter
            turned the event away.
    """
    durable_deliveries: list[NewDelivery] = []
    fast_deliveries: list[NewDelivery] = []
    auth_request: dict[str, Any] | None = None
    view: EventView | None = None
    for target in targets:
        sub = target.subscription
        if target.matcher is not None:
            if view is None:
                view = EventView(event)
            if not target.matcher.matches(view):
                filtered(sub.space)
                if view.budget.exceeded:
                    _warn_exceeded(sub.subscription_id, event.id)
                continue
        if target.authorizer_id is not None and auth_request is None:
            auth_request = authorizer_request(request)
        partition_key = None
        if sub.ordered:
            key = event.extensions.get("partitionkey")
            partition_key = None if key is None else str(key)
        delivery = NewDelivery(
            space=sub.space,
            subscription_id=sub.subscription_id,
            function_id=sub.function_id,
            partition_key=partition_key,
            auth_request=auth_request if target.authorizer_id is not None else None,
        )
        if sub.delivery == "at-most-once":
            fast_deliveries.append(delivery)
        else:
            durable_deliveries.append(delivery)
    if durable_deliveries:
        durable.append(Accepted(event, durable_deliveries))
    if fast_deliveries:
        fast.append(Accepted(event, fast_deliveries))
