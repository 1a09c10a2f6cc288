"""The records :class:`~eventgateway.queue.memory.MemoryQueue` keeps per event and delivery."""

from __future__ import annotations

from typing import Any

from eventgateway.events.model import CloudEvent
from eventgateway.queue.base import Delivery, NewDelivery
from eventgateway.queue.log_views import LoggedAttempt

__all__ = ["Key", "Record", "StoredEvent"]

Key = tuple[str, str, str]  # (space, subscription id, partition key)


class StoredEvent:
    """One accepted event: its encoded body (for the log and the byte bound) and deliveries."""

    __slots__ = ("body", "event", "received_at", "records", "seq", "size", "unsettled")

    def __init__(self, seq: int, event: CloudEvent, body: bytes, received_at: float) -> None:
        self.seq = seq
        self.event = event
        self.body = body
        self.size = len(body)
        self.received_at = received_at
        self.records: list[Record] = []
        self.unsettled = 0


class Record:
    """One delivery: the same columns the SQLite ``deliveries`` table has."""

    __slots__ = (
        "accepted_at",
        "attempts",
        "auth_request",
        "dead_reason",
        "due_at",
        "event",
        "function_id",
        "id",
        "last_error",
        "last_status",
        "lease_until",
        "log",
        "partition_key",
        "replay_of",
        "response_excerpt",
        "space",
        "state",
        "subscription_id",
        "updated_at",
    )

    def __init__(
        self,
        record_id: int,
        event: StoredEvent,
        new: NewDelivery,
        now: float,
        replay_of: int | None = None,
    ) -> None:
        self.id = record_id
        self.event = event
        self.space = new.space
        self.subscription_id = new.subscription_id
        self.function_id = new.function_id
        self.partition_key = new.partition_key
        self.auth_request: dict[str, Any] | None = new.auth_request
        self.state = "pending"
        self.attempts = 0
        self.due_at: float | None = now
        self.lease_until: float | None = None
        self.last_status: int | None = None
        self.last_error = ""
        self.response_excerpt = ""
        self.dead_reason = ""
        self.updated_at = now
        self.log: list[LoggedAttempt] = []
        # When it was made (accept or replay; a redrive sets it again): a retry policy's
        # max age counts from it.
        self.accepted_at = now
        self.replay_of = replay_of

    @property
    def key(self) -> Key:
        """The ordering key; only meaningful when ``partition_key`` is set."""
        return (self.space, self.subscription_id, self.partition_key or "")

    def to_delivery(self) -> Delivery:
        """A leased delivery for the dispatcher (sharing the stored event: see Delivery)."""
        return Delivery(
            id=str(self.id),
            space=self.space,
            subscription_id=self.subscription_id,
            function_id=self.function_id,
            event=self.event.event,
            accepted_at=self.accepted_at,
            attempt=self.attempts,
            partition_key=self.partition_key,
            auth_request=self.auth_request,
            body=self.event.body,
            lease_until=self.lease_until,
        )
