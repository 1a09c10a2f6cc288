"""What :class:`~eventgateway.queue.jetstream.JetStreamQueue` puts in JetStream: names,
stream and consumer configurations, message bodies, de-duplication ids, error mapping.

No I/O here, so the shapes can be read (and tested) without a server.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.errors import Error as NatsError
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError

from eventgateway.errors import ConfigError, StoreError
from eventgateway.queue.log_views import LoggedAttempt

__all__ = [
    "STREAM_FULL_CODES",
    "DeadEnvelope",
    "Envelope",
    "Names",
    "consumer_config",
    "deadletter_stream_config",
    "deferred_consumer_config",
    "delivery_stream_config",
    "is_nats_error",
    "is_stream_full",
    "log_stream_config",
    "msg_id",
    "store_error",
]

# JetStream's error codes for a publish refused by a stream limit with discard=new:
# 10077 "maximum messages exceeded", 10047 "maximum bytes exceeded" (server 2.9+).
STREAM_FULL_CODES = frozenset({10077, 10047})

# Stream and consumer names may not contain ".", "*", ">", whitespace or path separators;
# a prefix is also a subject token, so it is kept to a safe alphabet.
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Names:
    """Every stream, subject and consumer name of one deployment, from its prefix."""

    prefix: str

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ConfigError(
                f"NATS prefix {self.prefix!r} is not valid: use 1-64 letters, digits, '-' or "
                "'_' (it starts every stream, subject and consumer name)."
            )

    @property
    def deliveries_stream(self) -> str:
        """The work-queue stream of unsettled deliveries."""
        return f"{self.prefix}-deliveries"

    @property
    def deliveries_subject(self) -> str:
        """The one subject deliveries are published on."""
        return f"{self.prefix}.deliveries"

    @property
    def consumer(self) -> str:
        """The durable pull consumer every instance shares."""
        return f"{self.prefix}-dispatch"

    @property
    def ordered_consumer(self) -> str:
        """The durable pull consumer of ordered deliveries (its filter cannot overlap)."""
        return f"{self.prefix}-dispatch-ordered"

    @property
    def deferred_subject(self) -> str:
        """Where a blocked subscription's overflow waits until it is due (same stream)."""
        return f"{self.prefix}.deferred"

    @property
    def tombstones_subject(self) -> str:
        """Where a purge marks a dead letter as its own (no consumer; each message deleted
        at once): the mark's ``Nats-Msg-Id`` is the one a redrive of it would publish."""
        return f"{self.prefix}.tombstones"

    @property
    def deferred_consumer(self) -> str:
        """The durable pull consumer that moves due deferred deliveries back."""
        return f"{self.prefix}-deferred"

    @property
    def ordered_prefix(self) -> str:
        """Starts every ordered delivery's subject; the rest is its key's hash."""
        return f"{self.prefix}.ordered."

    def ordered_subject(self, space: str, subscription_id: str, partition_key: str) -> str:
        """The subject of one (space, subscription, key): its oldest message is its head."""
        return f"{self.ordered_prefix}{token(space, subscription_id, partition_key)}"

    @property
    def released_prefix(self) -> str:
        """Core NATS: ``<prefix>.released.<hash>`` says a key's head was settled."""
        return f"{self.prefix}.released."

    @property
    def room_subject(self) -> str:
        """Core NATS: asks which instances would start deliveries of some subscriptions
        now (:mod:`.jetstream_share`)."""
        return f"{self.prefix}.room"

    def delivery_subject(self, envelope: Envelope) -> str:
        """Where a delivery is published: its key's subject if it has one (ordered)."""
        if envelope.partition_key is None:
            return self.deliveries_subject
        return self.ordered_subject(
            envelope.space, envelope.subscription_id, envelope.partition_key
        )

    @property
    def deadletters_stream(self) -> str:
        """The stream dead letters are kept in."""
        return f"{self.prefix}-deadletters"

    def deadletter_subject(self, space: str, delivery_id: str, event_id: str) -> str:
        """One dead letter's subject. A space is a wildcard, one delivery id a wildcard
        get (:meth:`deadletter_of`), and so are an event's dead letters
        (:meth:`deadletters_of_event`): the event view falls back on them when the
        delivery log (bounded by bytes) has lost the event's history."""
        return f"{self.prefix}.deadletters.{token(space)}.{delivery_id}.{token(event_id)}"

    def deadletter_of(self, space: str, delivery_id: str) -> str:
        """The dead letter of one delivery (a subject filter)."""
        return f"{self.prefix}.deadletters.{token(space)}.{delivery_id}.*"

    def legacy_deadletter_subject(self, space: str, delivery_id: str) -> str:
        """Where earlier builds wrote a dead letter (no event token); still read."""
        return f"{self.prefix}.deadletters.{token(space)}.{delivery_id}"

    def deadletters_of(self, space: str) -> str:
        """Every dead letter of ``space`` (a subject filter)."""
        return f"{self.prefix}.deadletters.{token(space)}.>"

    def deadletters_of_event(self, space: str, event_id: str) -> str:
        """The dead letters of one event id in ``space`` (a subject filter)."""
        return f"{self.prefix}.deadletters.{token(space)}.*.{token(event_id)}"

    @property
    def log_stream(self) -> str:
        """The delivery log: what happened to each accepted event, one subject per event."""
        return f"{self.prefix}-log"

    def log_subject(self, space: str, source: str, event_id: str) -> str:
        """One event's history in one space; ``log_of(space, event_id)`` matches it."""
        return (
            f"{self.prefix}.log.{token(space)}.{token(event_id)}.{token(space, source, event_id)}"
        )

    def log_of(self, space: str, event_id: str | None = None) -> str:
        """The histories of ``space`` (of one event id, if given): a subject filter."""
        return f"{self.prefix}.log.{token(space)}." + (f"{token(event_id)}.*" if event_id else ">")

    @property
    def streams(self) -> tuple[str, ...]:
        """Every stream of the deployment (for operators and tests that remove it)."""
        return (self.deliveries_stream, self.deadletters_stream, self.log_stream)


def token(*parts: str) -> str:
    """A subject token for client text (any length, any characters): a 64-bit hash.

    Readers compare the stored fields too, so a collision can only cost a wasted read.
    """
    return hashlib.sha256(msgspec.msgpack.encode(parts)).hexdigest()[:16]


class Envelope(msgspec.Struct, array_like=True, omit_defaults=True):
    """One delivery as a message body: the event is stored once per delivery."""

    space: str
    subscription_id: str
    function_id: str
    # Wall-clock seconds at accept, replay or the last redrive: a retry policy's max age
    # counts from it.
    accepted_at: float
    event: bytes  # encode_event() of the event
    partition_key: str | None = None
    auth_request: dict[str, Any] | None = None
    # Set when a dead letter is redriven: the id it had (its first stream sequence), so
    # the delivery keeps its id and its history across redrives.
    delivery_id: str | None = None
    # The event's receipt, set when ``accepted_at`` is a replay's or a redrive's time: an
    # event rebuilt from its dead letters shows it. (Earlier builds ignore the field.)
    received_at: float | None = None
    # Set on a carried copy (deferred or handed back: :mod:`.jetstream_carry`), reset by a
    # redrive. The attempts made before it was carried: its own delivery count starts
    # again at 1 on the new message, so the attempt number is this plus that count - 1.
    attempts_before: int = 0
    # Wall clock (``time.time()``) when a copy on ``<prefix>.deferred`` may go back.
    due_at: float | None = None
    deferred: int = 0  # how many times the delivery was deferred: its cooldown doubles
    # How many times it was handed back unattempted (:mod:`.jetstream_carry`).
    handed_back: int = 0
    # How many times an instance shared it with another (:mod:`.jetstream_share`), and
    # which instance made the last share: one that comes back to its sharer is no move.
    shares: int = 0
    shared_by: str | None = None

    @property
    def carried(self) -> bool:
        """Whether this message carries a delivery over from an earlier one, its
        attempts kept (deferred, handed back or shared): its settles are logged so."""
        return self.deferred > 0 or self.handed_back > 0 or self.shares > 0

    @property
    def received(self) -> float:
        """When the event was received (accepted)."""
        return self.accepted_at if self.received_at is None else self.received_at


class DeadEnvelope(msgspec.Struct, array_like=True, omit_defaults=True):
    """A dead letter: the delivery, why it was given up, and its last attempt."""

    delivery: Envelope
    delivery_id: str
    reason: str
    attempts: int
    dead_at: float
    last_status: int | None = None
    last_error: str = ""
    response_excerpt: str = ""
    # The attempt that gave up (None from earlier builds, or when none was made): what the
    # event view shows of its attempt log once the delivery log has lost the rest.
    last_attempt: LoggedAttempt | None = None


def msg_id(scope: str, source: str, event_id: str, subscription_id: str) -> str:
    """The ``Nats-Msg-Id`` of one delivery.

    Hashed because ``source`` and ``id`` are client text of any length and header values
    must not hold CR/LF; the subscription is part of it because each delivery is its own
    message (see the module docstring of :mod:`.jetstream`).
    """
    raw = msgspec.msgpack.encode((scope, source, event_id, subscription_id))
    return hashlib.sha256(raw).hexdigest()


def delivery_stream_config(
    names: Names, *, max_deliveries: int, max_bytes: int, dedup_window_s: float, replicas: int
) -> StreamConfig:
    """Work-queue retention: an acked (or dead-lettered) delivery leaves the stream, so the
    stream's message count is the backlog and its limits are the queue's bounds; ``discard
    new`` makes a full stream refuse the publish (our 429) instead of dropping old work."""
    return StreamConfig(
        name=names.deliveries_stream,
        # Work-queue retention: the consumers' filters must not overlap, and these do not.
        subjects=[
            names.deliveries_subject,
            f"{names.ordered_prefix}>",
            names.deferred_subject,
            names.tombstones_subject,
        ],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_msgs=max_deliveries,
        max_bytes=max_bytes,
        discard=DiscardPolicy.NEW,
        duplicate_window=dedup_window_s,
        num_replicas=replicas,
    )


def deadletter_stream_config(names: Names, *, max_dead_letters: int, replicas: int) -> StreamConfig:
    """Limits retention with ``discard new``: a full dead-letter stream refuses new dead
    letters (the delivery then stays leased and comes back) rather than losing old ones."""
    return StreamConfig(
        name=names.deadletters_stream,
        subjects=[f"{names.prefix}.deadletters.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_msgs=max_dead_letters,
        discard=DiscardPolicy.NEW,
        num_replicas=replicas,
    )


def log_stream_config(names: Names, *, max_bytes: int, replicas: int) -> StreamConfig:
    """Limits retention with ``discard old``: the log is history, so when it is full the
    oldest records go (``enforce_retention`` normally keeps it well below that)."""
    return StreamConfig(
        name=names.log_stream,
        subjects=[f"{names.prefix}.log.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=max_bytes,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
    )


def consumer_config(
    names: Names, *, lease_s: float, max_in_flight: int, ordered: bool = False
) -> ConsumerConfig:
    """A shared durable pull consumer: of unordered deliveries, or of ``ordered`` ones.

    ``max_deliver=-1``: the subscription's RetryPolicy decides when to give up (it reads
    the delivery count as the attempt number), so the server must never stop redelivering
    on its own — a message past ``max_deliver`` would stay in the work queue, undelivered
    and invisible. ``max_ack_pending`` bounds the leases out at once over all instances.
    """
    return ConsumerConfig(
        durable_name=names.ordered_consumer if ordered else names.consumer,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=lease_s,
        max_deliver=-1,
        max_ack_pending=max_in_flight,
        max_waiting=512,
        filter_subject=f"{names.ordered_prefix}>" if ordered else names.deliveries_subject,
    )


def deferred_consumer_config(names: Names, *, max_in_flight: int) -> ConsumerConfig:
    """The mover's durable pull consumer of deferred deliveries (:mod:`.jetstream_mover`).

    A deferred message that is not due yet is ``nak``-ed with the rest of its delay, so
    it counts against ``max_ack_pending`` while it waits: ``max_in_flight`` (the stream's
    own bound) keeps that from ever binding first. Its delivery count means nothing (the
    attempts travel in the envelope), so ``max_deliver`` is unlimited.
    """
    return ConsumerConfig(
        durable_name=names.deferred_consumer,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=30.0,
        max_deliver=-1,
        max_ack_pending=max_in_flight,
        max_waiting=512,
        filter_subject=names.deferred_subject,
    )


def is_stream_full(exc: BaseException) -> bool:
    """Whether a publish was refused because the stream is at a limit."""
    return isinstance(exc, APIError) and exc.err_code in STREAM_FULL_CODES


def store_error(what: str, exc: BaseException) -> StoreError:
    """The :class:`StoreError` for a failed NATS call (the Events API answers 503)."""
    detail = exc.description if isinstance(exc, APIError) else (str(exc) or type(exc).__name__)
    return StoreError(f"NATS JetStream could not {what}: {detail}")


def is_nats_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from nats-py or the socket under it (timeouts included)."""
    return isinstance(exc, NatsError | OSError | TimeoutError)
