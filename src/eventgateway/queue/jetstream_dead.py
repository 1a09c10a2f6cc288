"""Reading the dead letters of :class:`~eventgateway.queue.jetstream.JetStreamQueue`.

A dead letter lives in ``<prefix>-deadletters`` on
``<prefix>.deadletters.<h(space)>.<delivery id>.<h(event id)>``
(:meth:`~eventgateway.queue.jetstream_wire.Names.deadletter_subject`), so it is found
three ways: by delivery id (a wildcard get), by event (the event view's fallback when
the byte-bounded delivery log lost the event's history) and by space (a scan). Earlier
builds wrote ``…<h(space)>.<delivery id>`` (no event token): found by id and by space,
not by event.

Raises nats-py's errors; the caller translates them.
"""

from __future__ import annotations

import contextlib

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from eventgateway.events.codec import decode_event
from eventgateway.queue.jetstream_setup import scan
from eventgateway.queue.jetstream_wire import DeadEnvelope, Names, is_stream_full

__all__ = [
    "Dead",
    "dead_letter",
    "dead_letters_of_event",
    "dead_letters_of_space",
    "is_purge_mark",
    "mark_for_purge",
    "redrive_id",
    "remove_dead_letter",
    "unmark",
]

# (dead-letter stream sequence, the dead letter)
Dead = tuple[int, DeadEnvelope]
# nats-server's answer to deleting a message that is not there (2.9.10: "no message
# found", or "stream store EOF" past the end).
_DELETE_FAILED = 10057


def redrive_id(delivery_id: str, seq: int) -> str:
    """The ``Nats-Msg-Id`` of dead letter ``seq``'s redrive: a retried redrive, or two at
    once, store it once; and a purge's mark of the letter (:func:`mark_for_purge`)."""
    return f"redrive-{delivery_id}-{seq}"


async def mark_for_purge(
    js: JetStreamContext, names: Names, seq: int, delivery_id: str
) -> int | None:
    """Mark dead letter ``seq`` as this purge's: the mark's stream sequence (``0``: no
    mark, the deliveries stream is full), or ``None`` if a redrive republished the letter
    first (the redrive owns it: a purge taking it as well erased the history of an event
    being delivered again).

    The mark is a message on no consumer's subject with the ``Nats-Msg-Id`` of the
    letter's redrive, so a redrive after it is stored as its duplicate: nothing. The
    caller deletes the letter, then the mark (:func:`unmark`), never the other way
    round: a redrive whose republish was a duplicate looks the original up
    (:func:`is_purge_mark`), and finding the mark it leaves the letter to the purge;
    finding nothing, it knows the purge is done with the letter. The server keeps the
    mark's id for the duplicate window after the mark is deleted.
    """
    try:
        ack = await js.publish(
            names.tombstones_subject, b"", headers={"Nats-Msg-Id": redrive_id(delivery_id, seq)}
        )
    except APIError as exc:
        if not is_stream_full(exc):
            raise
        return 0  # a full stream refuses a redrive's publish too: no race to lose
    return None if ack.duplicate else ack.seq


async def unmark(js: JetStreamContext, names: Names, mark: int) -> None:
    """Delete a purge's mark (:func:`mark_for_purge`), once its letter is deleted."""
    if mark:
        with contextlib.suppress(APIError):
            await js.delete_msg(names.deliveries_stream, mark)


async def is_purge_mark(js: JetStreamContext, names: Names, seq: int) -> bool:
    """Whether deliveries-stream message ``seq`` (the original of a redrive's duplicate
    republish) is a purge's mark still there: the purge is deleting the letter. A mark
    is deleted only after its letter; a redriven message may be gone too (delivered)."""
    try:
        msg = await js.get_msg(names.deliveries_stream, seq=seq)
    except NotFoundError:
        return False
    return msg.subject == names.tombstones_subject


async def remove_dead_letter(js: JetStreamContext, names: Names, seq: int) -> bool:
    """Delete dead letter ``seq``; ``False`` if it was gone already (a redrive or purge
    of another call, on this instance or another, took it between our read and now)."""
    try:
        await js.delete_msg(names.deadletters_stream, seq)
    except APIError as exc:
        if exc.err_code != _DELETE_FAILED:
            raise
        return False
    return True


async def dead_letter(
    js: JetStreamContext, names: Names, space: str, delivery_id: str, event_id: str | None = None
) -> Dead | None:
    """The dead letter of one delivery of ``space``, or ``None``.

    Knowing its ``event_id`` makes the get a literal one (~0.3 ms); without it, a
    wildcard get costs the server a pass over the stream's subjects (2.5-30 ms at 200,000
    dead letters on nats-server 2.9.10, by how old the dead letter is).
    """
    for subject in (
        names.deadletter_of(space, delivery_id)
        if event_id is None
        else names.deadletter_subject(space, delivery_id, event_id),
        names.legacy_deadletter_subject(space, delivery_id),
    ):
        try:
            msg = await js.get_last_msg(names.deadletters_stream, subject)
        except NotFoundError:
            continue
        assert msg.seq is not None
        assert msg.data is not None
        dead = msgspec.msgpack.decode(msg.data, type=DeadEnvelope)
        if dead.delivery.space == space:  # the subject holds a hash of it
            return msg.seq, dead
    return None


async def dead_letters_of_event(
    js: JetStreamContext, names: Names, space: str, event_id: str, *, limit: int
) -> list[Dead]:
    """The dead letters of event ``event_id`` (any source) in ``space``, oldest first."""
    # One direct get per dead letter, not a scan: an event has a few, and creating a
    # filtered consumer costs the server a pass over the stream's subjects (~0.2 s at
    # 200,000 dead letters on nats-server 2.9, against ~10 ms a get).
    subject = names.deadletters_of_event(space, event_id)
    found: list[Dead] = []
    seq = 1
    while len(found) < limit:
        try:
            msg = await js.get_msg(names.deadletters_stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        assert msg.seq is not None
        assert msg.data is not None
        seq = msg.seq + 1
        dead = msgspec.msgpack.decode(msg.data, type=DeadEnvelope)
        if dead.delivery.space == space and decode_event(dead.delivery.event).id == event_id:
            found.append((msg.seq, dead))
    return found


async def dead_letters_of_space(
    js: JetStreamContext, names: Names, space: str, *, limit: int
) -> list[Dead]:
    """Every dead letter of ``space`` (at most ``limit``), oldest first."""
    raw = await scan(js, names.deadletters_stream, names.deadletters_of(space), limit=limit)
    decoder = msgspec.msgpack.Decoder(DeadEnvelope)
    found = [(seq, decoder.decode(data)) for seq, _, data in raw]
    return [(seq, d) for seq, d in found if d.delivery.space == space]
