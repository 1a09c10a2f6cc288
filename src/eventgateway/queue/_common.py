"""Pieces every queue backend shares: the wake-up signal, bounds, de-duplication scope."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from eventgateway.errors import TooManyRequestsError
from eventgateway.queue.base import NewDelivery

__all__ = ["Wakeup", "check_bounds", "dedup_scope", "refusal", "wait_until_due"]

Clock = Callable[[], float]


class Wakeup:
    """A broadcast signal that a waiter cannot miss between checking and waiting.

    A waiter takes :meth:`token` *before* it looks for work; :meth:`fire` sets that token
    and starts a new one, so whatever fired after the look wakes the wait that follows.
    (A single cleared-and-reused ``asyncio.Event`` loses wake-ups when several tasks
    lease at once: one task's ``clear`` swallows a ``set`` meant for another.)
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def token(self) -> asyncio.Event:
        """The event the next :meth:`fire` sets."""
        return self._event

    def fire(self) -> None:
        """Wake every holder of the current token. Call on the event loop's thread."""
        self._event.set()
        self._event = asyncio.Event()


async def wait_until_due(token: asyncio.Event, next_due: float | None, clock: Clock) -> None:
    """Wait until ``token`` is set or the clock reaches ``next_due`` (``None``: no timer).

    The timer is computed from the injectable clock, so a test that moves the clock
    calls ``notify()`` to make waiters look again; nothing here ticks.
    """
    timeout = None if next_due is None else max(0.0, next_due - clock())
    try:
        await asyncio.wait_for(token.wait(), timeout)
    except TimeoutError:
        pass


def check_bounds(
    *,
    backlog: int,
    stored_bytes: int,
    add_deliveries: int,
    add_bytes: int,
    max_deliveries: int,
    max_bytes: int,
) -> None:
    """Refuse work that would take the queue past a bound.

    Raises:
        TooManyRequestsError: naming the bound that is full (``retry_after_s=1``).
    """
    if backlog + add_deliveries > max_deliveries or stored_bytes + add_bytes > max_bytes:
        raise refusal(
            backlog=backlog,
            stored_bytes=stored_bytes,
            add_deliveries=add_deliveries,
            max_deliveries=max_deliveries,
            max_bytes=max_bytes,
        )


def refusal(
    *, backlog: int, stored_bytes: int, add_deliveries: int, max_deliveries: int, max_bytes: int
) -> TooManyRequestsError:
    """The 429 for work that does not fit: names the count bound if that one is full,
    else the byte bound."""
    if backlog + add_deliveries > max_deliveries:
        return TooManyRequestsError(
            f"The delivery queue is full: {backlog} deliveries are waiting and "
            f"max_deliveries is {max_deliveries}; retry later.",
            retry_after_s=1,
        )
    return TooManyRequestsError(
        f"The delivery queue is full: {stored_bytes} bytes of events are waiting and "
        f"max_bytes is {max_bytes}; retry later.",
        retry_after_s=1,
    )


def dedup_scope(deliveries: Sequence[NewDelivery]) -> str:
    """The space an event is de-duplicated in: its deliveries' space.

    (source, id) is de-duplicated per space so that one tenant cannot suppress another's
    events by reusing their ids. Gateway-made events that fan out to several spaces
    (system events, with fresh UUIDs) use ``""``.
    """
    space = deliveries[0].space
    return space if all(d.space == space for d in deliveries) else ""
