"""What the delivery log shows: the view structs the Configuration API serves as they
are (camelCase JSON names, RFC 3339 UTC times), and how every backend builds them from
its stored columns, so all backends show the same things the same way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

from eventgateway.events.model import format_rfc3339

__all__ = [
    "STATES",
    "AttemptView",
    "DeadLetter",
    "DeliveryState",
    "DeliveryView",
    "EventSummary",
    "EventView",
    "LoggedAttempt",
    "SpaceHoldings",
    "aggregate_state",
    "dead_letter_view",
    "delivery_state",
    "delivery_view",
    "rfc3339",
]

DeliveryState = Literal["pending", "retrying", "delivered", "dead"]
STATES: Final[tuple[DeliveryState, ...]] = ("pending", "retrying", "delivered", "dead")

# Higher is worse; an event shows its worst delivery.
_RANK: Final[dict[str, int]] = {"delivered": 0, "pending": 1, "retrying": 2, "dead": 3}


class AttemptView(msgspec.Struct, kw_only=True, rename="camel"):
    """One attempt to deliver, as recorded when it was settled."""

    attempt: int  # 1-based position in this delivery's log (redrive does not reset it)
    started_at: str
    duration_ms: float
    outcome: str  # "delivered" | "failed" | "skipped"
    status: int | None = None
    error: str = ""


class DeliveryView(msgspec.Struct, kw_only=True, rename="camel"):
    """One delivery of an event to one subscription, with its attempt log."""

    delivery_id: str
    subscription_id: str
    function_id: str
    state: str
    attempts: int  # attempts counted against the retry policy (redrive resets it)
    next_attempt_at: str | None = None  # None when settled, in flight, or held by ordering
    last_status: int | None = None
    last_error: str = ""
    dead_reason: str = ""
    attempt_log: list[AttemptView] = msgspec.field(default_factory=list)
    # Set on a delivery made by a replay: the id of the delivery it repeats.
    replay_of: str | None = None


class EventView(msgspec.Struct, kw_only=True, rename="camel"):
    """An accepted event with its deliveries in one space."""

    id: str
    source: str
    type: str
    specversion: str
    received_at: str
    state: str
    event: msgspec.Raw  # the event exactly as it is delivered
    deliveries: list[DeliveryView] = msgspec.field(default_factory=list)


class EventSummary(msgspec.Struct, kw_only=True, rename="camel"):
    """One line of the recent-events listing.

    ``seq`` orders events by acceptance; pass the last one seen as ``before_seq`` to
    get the next page.
    """

    seq: int
    id: str
    source: str
    type: str
    received_at: str
    state: str
    deliveries: int


class DeadLetter(msgspec.Struct, kw_only=True, rename="camel"):
    """A delivery given up on, kept for inspection and redrive."""

    dead_letter_id: str  # the delivery's id
    subscription_id: str
    function_id: str
    event_id: str
    reason: str
    attempts: int
    last_status: int | None = None
    response_excerpt: str = ""
    dead_at: str
    event: msgspec.Raw


class SpaceHoldings(msgspec.Struct, frozen=True):
    """What a space still has in the delivery log that deleting the space would lose."""

    dead_letters: int
    unsettled: int  # accepted deliveries not yet settled: pending, retrying or in flight


def rfc3339(seconds: float) -> str:
    """Wall-clock seconds as an RFC 3339 UTC string (microseconds, trailing zeros dropped)."""
    return format_rfc3339(datetime.fromtimestamp(seconds, UTC))


def delivery_state(state: str, attempts: int) -> DeliveryState:
    """The log's name for a stored state: pending with attempts made is ``retrying``."""
    if state == "pending":
        return "retrying" if attempts > 0 else "pending"
    return "dead" if state == "dead" else "delivered"


def aggregate_state(states: Iterable[str]) -> str:
    """The worst of some delivery states (``delivered`` for none)."""
    return max(states, key=_RANK.__getitem__, default="delivered")


# (started_at, duration_ms, outcome, status, error): one attempt as backends store it.
LoggedAttempt = tuple[float, float, str, int | None, str]


def delivery_view(
    *,
    delivery_id: int,
    subscription_id: str,
    function_id: str,
    state: str,
    attempts: int,
    due_at: float | None,
    lease_until: float | None,
    now: float,
    last_status: int | None,
    last_error: str,
    dead_reason: str,
    log: Iterable[LoggedAttempt],
    replay_of: int | str | None = None,
    numbers: Sequence[int | None] = (),
) -> DeliveryView:
    """Build a :class:`DeliveryView` from a backend's stored columns (same for all).

    ``numbers``: each log entry's attempt number where known (JetStream's records carry
    it, so an attempt a crash cut off leaves a gap); otherwise its place in the log.
    """
    in_flight = lease_until is not None and lease_until > now
    return DeliveryView(
        delivery_id=str(delivery_id),
        subscription_id=subscription_id,
        function_id=function_id,
        state=delivery_state(state, attempts),
        attempts=attempts,
        next_attempt_at=(
            rfc3339(due_at) if state == "pending" and due_at is not None and not in_flight else None
        ),
        last_status=last_status,
        last_error=last_error,
        dead_reason=dead_reason,
        attempt_log=[
            AttemptView(
                attempt=_numbered(numbers, place),
                started_at=rfc3339(started_at),
                duration_ms=duration_ms,
                outcome=outcome,
                status=status,
                error=error,
            )
            for place, (started_at, duration_ms, outcome, status, error) in enumerate(log, 1)
        ],
        replay_of=None if replay_of is None else str(replay_of),
    )


def _numbered(numbers: Sequence[int | None], place: int) -> int:
    known = numbers[place - 1] if place <= len(numbers) else None
    return place if known is None else known


def dead_letter_view(
    *,
    delivery_id: int,
    subscription_id: str,
    function_id: str,
    event_id: str,
    reason: str,
    attempts: int,
    last_status: int | None,
    response_excerpt: str,
    dead_at: float,
    body: bytes,
) -> DeadLetter:
    """Build a :class:`DeadLetter` from a backend's stored columns (same for all)."""
    return DeadLetter(
        dead_letter_id=str(delivery_id),
        subscription_id=subscription_id,
        function_id=function_id,
        event_id=event_id,
        reason=reason,
        attempts=attempts,
        last_status=last_status,
        response_excerpt=response_excerpt,
        dead_at=rfc3339(dead_at),
        event=msgspec.Raw(body),
    )
