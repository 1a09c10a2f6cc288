"""An event's view rebuilt from its dead letters, for when the delivery log lost its
history (the log is bounded by bytes; the dead-letter stream never drops)."""

from __future__ import annotations

from collections.abc import Sequence

from eventgateway.events.codec import decode_event
from eventgateway.queue.jetstream_history import Accepted, EventState, _Delivery
from eventgateway.queue.jetstream_wire import DeadEnvelope

__all__ = ["accepted_of", "from_dead_letters"]


def accepted_of(dead: Sequence[DeadEnvelope]) -> Accepted:
    """The ``Accepted`` record of the deliveries of dead letters of one (space, source,
    event id), rebuilt from them: each carries the event and when it was received."""
    first = dead[0].delivery
    event = decode_event(first.event)
    return Accepted(
        min(d.delivery.received for d in dead),
        first.space,
        event.source,
        event.id,
        event.type,
        event.specversion,
        first.event,
        [(d.delivery_id, d.delivery.subscription_id, d.delivery.function_id) for d in dead],
    )


def from_dead_letters(subject: str, dead: Sequence[DeadEnvelope]) -> EventState:
    """An event whose history the log lost (it is bounded by bytes), shown from its dead
    letters (of one space, source and id): each delivery dead, with the attempt count,
    last status and error, reason, and the last attempt as its whole attempt log."""
    accepted = accepted_of(dead)
    state = EventState(0, subject, accepted, max(d.dead_at for d in dead))
    for d in dead:
        state.deliveries[d.delivery_id] = _Delivery(
            d.delivery_id,
            d.delivery.subscription_id,
            d.delivery.function_id,
            None,
            d.dead_at,
            state="dead",
            attempts=d.attempts,
            last_status=d.last_status,
            last_error=d.last_error,
            dead_reason=d.reason,
            log=[] if d.last_attempt is None else [d.last_attempt],
        )
    return state
