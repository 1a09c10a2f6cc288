"""The messages between ``eg serve`` and a delivery worker that dispatches durable deliveries.

In ``--dispatch worker`` mode the worker process leases, calls and settles the SQLite
queue's deliveries itself; the HTTP process keeps ingest, the APIs and the local runtime.
They talk over one UNIX socket with length-prefixed msgpack frames
(:func:`~eventgateway.providers.remote.write_frame`), each a tagged struct:

gateway → worker
    :class:`Routing` (the whole routing configuration, sent on connect and after every
    change), :class:`Wake` (a commit made deliveries due), :class:`Handed` (deliveries
    committed as leased to the worker, ``queue/sqlite_handoff.py``), :class:`Enqueue`
    (at-most-once events, which live in the worker's memory only), :class:`Drain` (stop
    leasing, finish what is in flight), :class:`BackReply` (the answer to a
    :class:`BackCall`).
worker → gateway
    :class:`Credit` (how many handed deliveries the worker takes on this connection),
    :class:`BackCall` (call a function the worker cannot call itself: the local runtime's),
    :class:`Stats` (attempts and settlements, for the gateway's metrics),
    :class:`Resync` (send the routing again: a delivery names an unknown subscription),
    :class:`Drained` (nothing is in flight any more).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from eventgateway.model.entities import Cors, EventType, Function, Subscription
from eventgateway.providers.remote import CallReply
from eventgateway.queue.sqlite_handoff import HandedEvent

__all__ = [
    "BackCall",
    "BackReply",
    "Credit",
    "Drain",
    "Drained",
    "Enqueue",
    "Handed",
    "Message",
    "QueuedEvent",
    "Resync",
    "Routing",
    "Stats",
    "Wake",
    "decode_message",
]


class Routing(msgspec.Struct, tag="routing", array_like=True):
    """Every routed entity of every space, as the gateway's routing table was built from."""

    revision: int
    event_types: list[EventType]
    functions: list[Function]
    subscriptions: list[Subscription]
    cors: list[Cors]


class Wake(msgspec.Struct, tag="wake", array_like=True):
    """Look for due deliveries now."""


class Handed(msgspec.Struct, tag="handed", array_like=True):
    """Deliveries the gateway committed as leased to the worker, with their events."""

    events: list[HandedEvent]


class Credit(msgspec.Struct, tag="credit", array_like=True):
    """The worker takes up to ``granted`` handed deliveries in all on this connection
    (a running total: it grows as the worker leases them out)."""

    granted: int


class QueuedEvent(msgspec.Struct, array_like=True):
    """An at-most-once event: its stored form, its deliveries, each as (space,
    subscription id, function id, partition key, authorizer request), and its type (so a
    worker with a full buffer counts the drop without decoding the body)."""

    body: bytes
    deliveries: list[tuple[str, str, str, str | None, dict[str, Any] | None]]
    type: str


class Enqueue(msgspec.Struct, tag="enqueue", array_like=True):
    """At-most-once events accepted by the gateway, for the worker's in-memory queue."""

    events: list[QueuedEvent]


class Drain(msgspec.Struct, tag="drain", array_like=True):
    """Stop leasing; answer :class:`Drained` once in-flight deliveries are settled."""


class Drained(msgspec.Struct, tag="drained", array_like=True):
    """The worker's dispatcher stopped and holds nothing in flight."""


class Resync(msgspec.Struct, tag="resync", array_like=True):
    """Send :class:`Routing` again: a delivery names a subscription the worker lacks."""


class BackCall(msgspec.Struct, tag="call", array_like=True):
    """Call ``function_id`` of ``space`` in the gateway process (local runtime functions)."""

    id: int
    space: str
    function_id: str
    body: bytes
    content_type: str
    headers: list[tuple[str, str]]
    timeout_s: float


class BackReply(CallReply, tag="reply", array_like=True):
    """The answer to a :class:`BackCall`: a reply, or an error (``status`` may be set)."""


class Stats(msgspec.Struct, tag="stats", array_like=True):
    """What the worker's dispatcher did since the last :class:`Stats`.

    ``attempts``: (outcome, duration in seconds) per attempt; ``settled``: (space, state,
    seconds since the event was accepted) per settlement; ``dropped``: (space, event type)
    per at-most-once delivery dropped because the worker's buffer was full.
    """

    attempts: list[tuple[str, float]]
    settled: list[tuple[str, str, float]]
    dropped: list[tuple[str, str]] = []


Message: TypeAlias = (
    Routing
    | Wake
    | Handed
    | Credit
    | Enqueue
    | Drain
    | Drained
    | Resync
    | BackCall
    | BackReply
    | Stats
)

_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def decode_message(payload: bytes) -> Message:
    """Decode one frame's payload.

    Raises:
        msgspec.DecodeError: not one of the messages above.
    """
    return _decoder.decode(payload)
