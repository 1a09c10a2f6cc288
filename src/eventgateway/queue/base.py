"""The ``DeliveryQueue`` interface.

The Events API puts one :class:`Delivery` per matching async subscription; the dispatcher
leases deliveries, makes an attempt, and then acks, retries later, or dead-letters each.

Contract:

* ``put`` returns only when the deliveries are as safe as the backend makes them (durable
  backends: committed); it raises :class:`~eventgateway.errors.TooManyRequestsError` when
  the queue is full, so the caller can answer 429 rather than drop an event silently.
* ``lease`` waits until at least one delivery is due (or the queue closes, then returns
  ``[]``) and hands out at most ``max_count``; a leased delivery is not handed out again
  until its lease is settled by ``ack``/``retry_later``/``dead_letter`` or expires.
* ``close`` wakes every waiting ``lease``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventgateway.events.model import CloudEvent

__all__ = ["Delivery", "DeliveryQueue"]


@dataclass(slots=True)
class Delivery:
    """One event on its way to one subscription's function."""

    id: str
    space: str
    subscription_id: str
    function_id: str
    event: CloudEvent
    # The incoming request as an authorizer sees it (contract §4.6); only kept when the
    # event type has an authorizer, since it costs memory and storage for every event.
    auth_request: dict[str, Any] | None = None
    attempt: int = 0


class DeliveryQueue(abc.ABC):
    """Deliveries between accept and deliver. See the module docstring."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend."""

    @abc.abstractmethod
    async def put(self, deliveries: Sequence[Delivery]) -> None:
        """Enqueue deliveries; ``TooManyRequestsError`` when full."""

    @abc.abstractmethod
    async def lease(self, max_count: int) -> list[Delivery]:
        """Wait for due deliveries and lease up to ``max_count``; ``[]`` once closed."""

    @abc.abstractmethod
    async def ack(self, delivery: Delivery) -> None:
        """The delivery succeeded (or was settled for good)."""

    @abc.abstractmethod
    async def retry_later(self, delivery: Delivery, delay_s: float, error: str) -> None:
        """Make the delivery due again after ``delay_s``."""

    @abc.abstractmethod
    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Give up on the delivery and keep it for inspection."""

    @abc.abstractmethod
    def backlog(self) -> int:
        """Deliveries accepted and not yet settled."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop handing out deliveries and wake every waiting ``lease``."""
