"""System events (contract §4.7): ``eventgateway.event.received`` and the function events.

They are delivered like any async event to subscriptions whose event type is the system
type, on ``POST /``. When nobody subscribes — the common case — emitting costs one lookup.
System events never cause further system events (the invoker checks the type).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from eventgateway.errors import StoreError, TooManyRequestsError
from eventgateway.events.codec import encode_event
from eventgateway.events.model import CloudEvent, transformed_event
from eventgateway.queue.base import Accepted, DeliveryQueue, NewDelivery
from eventgateway.routing.filters import EventView
from eventgateway.routing.table import RoutingTable

__all__ = ["SystemEvents"]

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, CloudEvent):
        return msgspec.Raw(encode_event(value))
    if isinstance(value, bytes):
        return value  # msgspec encodes bytes as base64, as Go does for []byte
    return value


def _space_of(data: dict[str, Any]) -> str | None:
    """The space a system event concerns: a function's, or the first segment of a path."""
    space = data.get("space")
    if isinstance(space, str):
        return space
    path = data.get("path")
    if isinstance(path, str) and path.startswith("/"):
        return path[1:].split("/", 1)[0] or None
    return None


class SystemEvents:
    """Turns gateway happenings into events for subscribed functions."""

    def __init__(self, queue: DeliveryQueue, table: Callable[[], RoutingTable]) -> None:
        self._queue = queue
        self._table = table
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue ``event_type`` for its subscribers, if it has any; never blocks.

        Subscribers on ``POST /`` get every system event (the open-source original's
        routing; in auth mode only the operator may subscribe there). Subscribers on
        ``POST /<space>/`` (the hosted original's routing) get those of their own space:
        the event's path starts with it, or the function belongs to it. A subscription's
        ``filter`` applies as for any async event.
        """
        table = self._table()
        if not table.has_async_type("POST", event_type):
            return  # the common case: nobody subscribes to this system event anywhere
        targets = table.subscriptions_for_system_event(event_type)
        space = _space_of(data)
        if space:
            own = table.async_targets("POST", f"/{space}/", event_type)
            if own:
                targets = tuple(
                    {t.subscription.subscription_id: t for t in (*targets, *own)}.values()
                )
        if not targets:
            return
        payload = {key: _jsonable(value) for key, value in data.items()}
        event = transformed_event(
            event_type, "application/json", msgspec.Raw(msgspec.json.encode(payload))
        )
        view = EventView(event)
        deliveries = [
            NewDelivery(
                space=target.subscription.space,
                subscription_id=target.subscription.subscription_id,
                function_id=target.subscription.function_id,
            )
            for target in targets
            if target.matcher is None or target.matcher.matches(view)
        ]
        if not deliveries:
            return
        task = asyncio.get_running_loop().create_task(self._put(Accepted(event, deliveries)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, item: Accepted) -> None:
        try:
            await self._queue.accept([item])
        except (TooManyRequestsError, StoreError) as exc:
            logger.warning("system event %s dropped: %s", item.event.type, exc)

    async def drain(self) -> None:
        """Wait for queued system events to reach the queue (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
