"""The ``DeliveryQueue`` interface: the hand-off between accepting and delivering.

The Events API hands each accepted event with its deliveries (one per matching async
subscription) to :meth:`DeliveryQueue.accept`; the dispatcher leases deliveries, makes an
attempt, and settles each one with ``ack``, ``retry_later`` or ``dead_letter``, passing the
:class:`AttemptRecord` that the delivery log keeps.

Contract (tested by ``tests/contract/test_queue.py`` for every backend):

* ``accept`` returns only when the deliveries are as safe as the backend makes them
  (SQLite: committed); it raises :class:`~eventgateway.errors.TooManyRequestsError` when
  the queue is over its bounds (count or bytes), so the caller answers 429 rather than
  drop an event. An event whose (``source``, ``id``) was accepted within the
  de-duplication window is not enqueued again: its result is ``True`` ("duplicate").
* ``lease`` waits until a delivery is due (or the queue closes, then returns ``[]``) and
  hands out at most ``max_count``, oldest first, skipping subscriptions in ``exclude``.
  A leased delivery is not handed out again until it is settled or its lease
  (``lease_s``) expires — then it is handed out again (at-least-once after a crash).
* ``extend`` keeps a leased delivery's lease while its attempt runs: the lease then ends
  ``lease_s`` after the call. A delivery already settled, or whose lease ran out (it may
  be leased again elsewhere), is left alone. The lease recovers the deliveries of a dead
  process; a live one renews the leases of its long attempts (``dispatch/renewal.py``).
* For an ``ordered`` delivery with a partition key, only the oldest unsettled delivery of
  its (subscription, key) is ever leasable: a failing event holds back its key only.
* ``close`` wakes every waiting ``lease``; undelivered deliveries stay (durable backends).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

import msgspec

from eventgateway.events.model import CloudEvent

__all__ = [
    "Accepted",
    "AttemptRecord",
    "Delivery",
    "DeliveryQueue",
    "NewDelivery",
    "Room",
]

AttemptOutcome = Literal["delivered", "failed", "skipped"]


# The per-event and per-delivery value types are msgspec Structs: one is made for every
# event, target, delivery and attempt, and a Struct is built ~10x faster than a frozen
# dataclass (75-110 ns against 340-1,130 ns; bench/README.md "Hot-path value types").
class NewDelivery(msgspec.Struct, frozen=True):
    """One subscription that an accepted event must reach."""

    space: str
    subscription_id: str
    function_id: str
    # Set only for ``ordered`` subscriptions, from the event's ``partitionkey`` extension.
    partition_key: str | None = None
    # The incoming request as an authorizer sees it (contract §4.6); only kept when the
    # event type has an authorizer, since it costs memory and storage for every event.
    auth_request: dict[str, Any] | None = None


class Accepted(msgspec.Struct, frozen=True):
    """One accepted event and the deliveries it needs.

    ``encoded``: the event as ``encode_event`` writes it, when the caller decoded ``event``
    from exactly that (the delivery worker, from the gateway's frames). The memory queue
    then stores it as is and keeps ``event`` without a copy (the caller hands both over);
    the durable queues encode the event themselves.
    """

    event: CloudEvent
    deliveries: Sequence[NewDelivery]
    encoded: bytes | None = None


Room = Callable[[str], int]
"""How many deliveries of a subscription a lease may still hand out (see ``lease``)."""


class Delivery(msgspec.Struct):
    """A leased delivery: one event on its way to one subscription's function.

    The deliveries of one event (a fan-out) may share its ``event`` object: never change
    it in place, change a copy (``CloudEvent.copy``), as ``apply_authorization`` does.
    """

    id: str
    space: str
    subscription_id: str
    function_id: str
    event: CloudEvent
    accepted_at: float  # wall-clock seconds, for a retry policy's max age
    attempt: int = 0  # attempts made before this lease
    partition_key: str | None = None
    auth_request: dict[str, Any] | None = None
    # The event as the queue stored it (``encode_event``'s output), when it has it: sent
    # as is when the event goes out unchanged, instead of encoding it again per delivery.
    body: bytes | None = None
    # Which lease this is, for the backends that need it to tell their own lease from a
    # later one (SQLite, memory: when it ends, as last set by ``lease`` or ``extend``).
    lease_until: float | None = None


class AttemptRecord(msgspec.Struct, frozen=True):
    """One attempt, as the delivery log keeps it."""

    started_at: float  # wall-clock seconds
    duration_s: float
    outcome: AttemptOutcome
    status: int | None = None
    error: str = ""
    response_excerpt: str = ""
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class DeliveryQueue(abc.ABC):
    """Deliveries between accept and deliver. See the module docstring."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend (create tables, start writer threads)."""

    @abc.abstractmethod
    async def accept(self, items: Sequence[Accepted]) -> list[bool]:
        """Enqueue events with their deliveries; per item ``True`` if it was a duplicate."""

    @abc.abstractmethod
    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        """Wait for due deliveries and lease up to ``max_count``; ``[]`` once closed.

        ``exclude`` holds subscription ids whose deliveries must not be leased now (the
        dispatcher's slots for them are full). ``room(subscription_id)``, when given, is
        how many deliveries of that subscription one lease may hand out at most (its
        free slots); a lease never hands out more, so one subscription's backlog cannot
        take every slot at once. A lease waiting while a subscription is excluded or has
        no room need not notice when that changes: the caller then calls :meth:`notify`.
        """

    @abc.abstractmethod
    async def ack(self, delivery: Delivery, attempt: AttemptRecord) -> None:
        """The delivery is done (delivered, or skipped for good)."""

    @abc.abstractmethod
    async def retry_later(self, delivery: Delivery, delay_s: float, attempt: AttemptRecord) -> None:
        """The attempt failed; make the delivery due again after ``delay_s``."""

    @abc.abstractmethod
    async def dead_letter(
        self, delivery: Delivery, reason: str, attempt: AttemptRecord | None
    ) -> None:
        """Give up on the delivery and keep it, with ``reason``, for inspection and redrive."""

    async def recount(self, delivery: Delivery) -> int:
        """The attempts made before this one, as the delivery log proves them.

        The dispatcher asks this of a leased delivery only right before it would
        dead-letter it for running out of attempts, and retries it if the answer is
        lower than ``delivery.attempt``. A backend whose lease counts an attempt that
        was never made (JetStream: a message a crashed instance had fetched comes back
        with the server's delivery count raised) overrides it, and numbers the settle
        that follows by its answer. This default returns ``delivery.attempt``: SQLite
        and memory count settled attempts only.

        Returns:
            At most ``delivery.attempt``.
        """
        return delivery.attempt

    @property
    @abc.abstractmethod
    def lease_s(self) -> float:
        """How long a lease lasts, from ``lease`` or the last ``extend``, in seconds."""

    async def refresh_counters(self) -> None:  # noqa: B027 - optional hook
        """Bring :meth:`backlog` up to date where it is a copy of a shared store's figure
        (JetStream: the stream's, all instances'); a no-op where it is exact already."""

    async def release(  # noqa: B027 - optional: the default leaves leases to run out
        self, deliveries: Sequence[Delivery], delay_s: float = 0.0
    ) -> None:
        """Hand leased deliveries back unattempted: due again ``delay_s`` from now, no
        attempt counted (a stopping dispatcher's unstarted ones, a call the gateway itself
        cut off). This default leaves them to their lease's end (JetStream: one count)."""

    @abc.abstractmethod
    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Keep the leases of ``deliveries`` (their attempts still run) for ``lease_s`` more.

        One call renews them all (one write, where the backend writes). A delivery that
        is settled, or whose lease ran out, is left alone: it is not leased again here.
        """

    def notify(self) -> None:  # noqa: B027 - optional hook
        """Check now: another process may have committed new deliveries, or the caller's
        ``exclude`` / ``room`` of a waiting :meth:`lease` may have changed."""

    @abc.abstractmethod
    def backlog(self) -> int:
        """Deliveries accepted and not yet settled (an estimate for other processes' work)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop handing out deliveries and wake every waiting ``lease``."""
