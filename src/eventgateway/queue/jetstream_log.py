"""The :class:`DeliveryLog` side of :class:`~eventgateway.queue.jetstream.JetStreamQueue`.

* History: stream ``<prefix>-log``, one subject per (space, event), records appended on
  accept and on every settle (:mod:`.jetstream_history`); a view folds its subject's
  records. Looking up one event reads one subject; listings read a space's subjects.
* Dead letters: stream ``<prefix>-deadletters``, subject per (space, delivery id, event
  id), read by :mod:`.jetstream_dead`. Redrive republishes the delivery (keeping its id)
  and deletes the dead letter; purge deletes it. The log is bounded by bytes and the
  dead letters are not: an event whose history the log dropped is shown from its dead
  letters, and a redrive of one writes its ``Accepted`` record again.

Reads go through a short-lived consumer and are bounded by ``scan_limit`` messages, so
listings are linear in the space's retained history: fine for an operator's API, not a
hot path (``enforce_retention`` keeps the history short).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from eventgateway.errors import StoreError
from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.base import Accepted as AcceptedItem
from eventgateway.queue.jetstream_dead import (
    Dead,
    dead_letter,
    dead_letters_of_event,
    dead_letters_of_space,
    is_purge_mark,
    mark_for_purge,
    redrive_id,
    remove_dead_letter,
    unmark,
)
from eventgateway.queue.jetstream_dead_history import accepted_of, from_dead_letters
from eventgateway.queue.jetstream_history import (
    Accepted,
    EventState,
    Purged,
    Record,
    Redriven,
    fold,
)
from eventgateway.queue.jetstream_publish import Publisher
from eventgateway.queue.jetstream_setup import scan_from
from eventgateway.queue.jetstream_wire import DeadEnvelope, Names, is_nats_error, store_error
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.log_views import DeadLetter, EventSummary, EventView, dead_letter_view
from eventgateway.queue.selection import Selection, parse_ids

__all__ = ["JetStreamLogMixin", "translated"]

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        if not is_nats_error(exc):
            raise
        raise store_error(what, exc) from exc


class JetStreamLogMixin(DeliveryLog):
    """Reads and administers the log and dead-letter streams; the queue provides the rest."""

    names: Names
    _js: JetStreamContext | None
    _clock: Callable[[], float]
    _wakeup: Wakeup
    _scan_limit: int
    _publish_timeout_s: float
    _publisher: Publisher | None

    # An annotation only (no attribute), so it never shadows the queue's method.
    _refresh: Callable[..., Awaitable[None]]

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise StoreError("the JetStream queue is closed")
        return self._js

    def _publishing(self) -> Publisher:
        if self._publisher is None or self._js is None:
            raise StoreError("the JetStream queue is closed")
        return self._publisher

    async def _append(self, subject: str, record: Record) -> None:
        message = (subject, msgspec.msgpack.encode(record), None)
        [outcome] = await self._publishing().publish([message], self._publish_timeout_s)
        if isinstance(outcome, BaseException):
            raise outcome

    async def _history(self, subject: str) -> list[EventState]:
        return (await self._history_of(subject))[0]

    async def _history_of(self, subject: str) -> tuple[list[EventState], bool]:
        """The fold, and whether the read stopped at ``scan_limit`` with newer records
        left out (a delivery settled in one of those then looks pending)."""
        js, stream, limit = self._jetstream(), self.names.log_stream, self._scan_limit
        raw, truncated = await scan_from(js, stream, subject, limit=limit)
        decoder = msgspec.msgpack.Decoder(Record)
        return fold([(seq, subj, decoder.decode(data)) for seq, subj, data in raw]), truncated

    def _accepted_records(
        self, item: AcceptedItem, body: bytes, acks: Sequence[object], now: float
    ) -> list[tuple[str, Accepted]]:
        """One log record per space of the event (``body``: its stored form), naming its
        newly stored deliveries."""
        event = item.event
        by_space: dict[str, list[tuple[str, str, str]]] = {}
        # One request per event (the Events API shares it among the deliveries that need
        # it); kept for replay, and only for event types with an authorizer.
        auth: dict[str, dict[str, Any]] = {}
        for new, ack in zip(item.deliveries, acks, strict=True):
            if not getattr(ack, "duplicate", False):
                entry = (str(getattr(ack, "seq", 0)), new.subscription_id, new.function_id)
                by_space.setdefault(new.space, []).append(entry)
                if new.auth_request is not None:
                    auth.setdefault(new.space, new.auth_request)
        return [
            (
                self.names.log_subject(space, event.source, event.id),
                Accepted(
                    now, space, event.source, event.id, event.type, event.specversion,
                    body, deliveries, auth.get(space),
                ),
            )
            for space, deliveries in by_space.items()
        ]  # fmt: skip

    async def _log_accepted(self, records: list[tuple[str, Accepted]]) -> None:
        # The deliveries are stored already: a lost record only hides them from the log.
        batch = [(subject, msgspec.msgpack.encode(record), None) for subject, record in records]
        outcomes = await self._publishing().publish(batch, self._publish_timeout_s)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if not is_nats_error(outcome):
                    raise outcome
                logger.warning("delivery log record of an accepted event lost: %s", outcome)

    # -- events ---------------------------------------------------------------------------

    async def get_event(self, space: str, event_id: str) -> EventView | None:
        """See :meth:`DeliveryLog.get_event`. ``nextAttemptAt`` is shown for retrying
        deliveries only: whether a pending one is leased right now, only the server knows."""
        async with translated("read the delivery log"):
            events = await self._history(self.names.log_of(space, event_id))
            mine = [
                e for e in events if e.accepted.space == space and e.accepted.event_id == event_id
            ]
            if mine:
                return max(mine, key=lambda e: e.seq).view(self._clock())
            # The log is bounded by bytes and drops its oldest records, a dead event's
            # included; its dead letters (in a stream that never drops) still show it.
            dead = await self._dead_events(space, event_id)
        return max(dead, key=lambda e: e.accepted.at).view(self._clock()) if dead else None

    async def _dead_events(self, space: str, event_id: str) -> list[EventState]:
        dead = await dead_letters_of_event(
            self._jetstream(), self.names, space, event_id, limit=self._scan_limit
        )
        by_subject: dict[str, list[DeadEnvelope]] = {}
        for _, d in dead:
            by_subject.setdefault(self._log_subject(d), []).append(d)
        return [from_dead_letters(subject, group) for subject, group in by_subject.items()]

    def _log_subject(self, dead: DeadEnvelope) -> str:
        event = decode_event(dead.delivery.event)
        return self.names.log_subject(dead.delivery.space, event.source, event.id)

    async def list_events(
        self,
        space: str,
        *,
        state: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[EventSummary]:
        """See :meth:`DeliveryLog.list_events`."""
        async with translated("read the delivery log"):
            events = await self._history(self.names.log_of(space))
        out: list[EventSummary] = []
        for e in reversed(events):
            if len(out) >= limit:
                break
            if e.accepted.space != space or (before_seq is not None and e.seq >= before_seq):
                continue
            summary = e.summary(subscription_id)
            if summary is not None and (state is None or summary.state == state):
                out.append(summary)
        return out

    # -- dead letters -------------------------------------------------------------------------

    async def _dead(self, selected: Selection) -> list[Dead]:
        space, ids = selected.space, selected.ids
        js, names = self._jetstream(), self.names
        found: list[Dead] = []
        if ids is not None:
            for delivery_id in sorted(parse_ids(ids)):
                one = await dead_letter(js, names, space, str(delivery_id))
                if one is not None:
                    found.append(one)
        else:
            found = await dead_letters_of_space(js, names, space, limit=self._scan_limit)
        return [
            (seq, d)
            for seq, d in found
            if d.delivery.space == space
            and selected.subscription(d.delivery.subscription_id)
            and selected.in_window(d.dead_at)
        ]

    @staticmethod
    def _dead_letter(dead: DeadEnvelope) -> DeadLetter:
        return dead_letter_view(
            delivery_id=int(dead.delivery_id),
            subscription_id=dead.delivery.subscription_id,
            function_id=dead.delivery.function_id,
            event_id=decode_event(dead.delivery.event).id,
            reason=dead.reason,
            attempts=dead.attempts,
            last_status=dead.last_status,
            response_excerpt=dead.response_excerpt,
            dead_at=dead.dead_at,
            body=dead.delivery.event,
        )

    async def _list_dead_letters(self, selected: Selection, limit: int) -> list[DeadLetter]:
        async with translated("read the dead letters"):
            dead = await self._dead(selected)
        dead.sort(key=lambda item: (item[1].dead_at, int(item[1].delivery_id)), reverse=True)
        return [self._dead_letter(d) for _, d in dead[:limit]]

    async def get_dead_letter(self, space: str, dead_letter_id: str) -> DeadLetter | None:
        """See :meth:`DeliveryLog.get_dead_letter`."""
        async with translated("read a dead letter"):
            dead = await self._dead(Selection(space, [dead_letter_id]))
        return self._dead_letter(dead[0][1]) if dead else None

    async def _redrive(self, selected: Selection) -> int:
        # Each dead letter is republished (keeping its delivery id, its ``accepted_at``
        # now), then deleted; a full deliveries stream refuses it (StoreError).
        js, names = self._jetstream(), self.names
        async with translated("redrive dead letters"):
            listed = await self._dead(selected)
            messages: dict[str, int] = {}  # delivery id → the stream sequence it has now
            dead: list[Dead] = []  # what this call redrove
            now = self._clock()
            for seq, d in listed:
                # Max age counts from the redrive: a dead letter is usually older than it,
                # and counted from the receipt the retries would end after one attempt.
                again = msgspec.structs.replace(
                    d.delivery,
                    delivery_id=d.delivery_id,
                    accepted_at=now,
                    received_at=d.delivery.received,
                    # A redriven delivery's attempts count from zero, deferred or not.
                    attempts_before=0,
                    due_at=None,
                    deferred=0,
                    handed_back=0,
                    shares=0,
                    shared_by=None,
                )
                ack = await js.publish(
                    names.delivery_subject(again),
                    msgspec.msgpack.encode(again),
                    # A redrive retried after a failure is stored once.
                    headers={"Nats-Msg-Id": redrive_id(d.delivery_id, seq)},
                )
                # A duplicate of a purge's mark (the same Nats-Msg-Id) republished
                # nothing: the letter is the purge's, which deletes it. Otherwise the
                # letter is republished (by this call, a concurrent one, or an earlier
                # one cut short), and it is this call's if this call deletes it: two
                # redrives count it once, and ``ack.seq`` is the republished message.
                if ack.duplicate and await is_purge_mark(js, names, ack.seq):
                    continue
                if await remove_dead_letter(js, names, seq):
                    messages[d.delivery_id] = ack.seq
                    dead.append((seq, d))
            # Written after the publishes, so a redriven delivery may be settled (and its
            # record written) first: the sequences let the fold order the two.
            await self._note(dead, Redriven, messages)
        await self._refresh(force=True)
        self._wakeup.fire()
        return len(dead)

    async def _purge(self, selected: Selection) -> int:
        js, names = self._jetstream(), self.names
        async with translated("purge dead letters"):
            listed = await self._dead(selected)
            dead: list[Dead] = []
            for seq, d in listed:
                # One a redrive republished first, or another call took, is not ours.
                mark = await mark_for_purge(js, names, seq, d.delivery_id)
                if mark is None:
                    continue
                if await remove_dead_letter(js, names, seq):
                    dead.append((seq, d))
                # Only now, and not if the delete raised (the letter may be left), so
                # a redrive that finds no mark knows the letter is gone.
                await unmark(js, names, mark)
            for subject in await self._note(dead, Purged):
                if not await self._history(subject):  # no delivery left: the event goes
                    await js.purge_stream(names.log_stream, subject=subject)
        await self._refresh(force=True)  # a racing redrive may have counted a mark
        return len(dead)

    async def _note(
        self,
        dead: list[Dead],
        kind: type[Redriven | Purged],
        messages: dict[str, int] | None = None,
    ) -> set[str]:
        """Append one ``kind`` record per event (a ``Redriven`` one with the deliveries'
        new stream sequences, ``messages``); returns the events' log subjects."""
        by_subject: dict[str, list[DeadEnvelope]] = {}
        for _, d in dead:
            by_subject.setdefault(self._log_subject(d), []).append(d)
        now = self._clock()
        for subject, letters in by_subject.items():
            delivery_ids = [d.delivery_id for d in letters]
            if kind is Redriven and messages is not None:
                if not await self._has_history(subject):
                    # The log lost the event's history (it is bounded by bytes): start it
                    # again, so the redriven deliveries are shown and logged from here.
                    await self._append(subject, accepted_of(letters))
                record: Record = Redriven(now, delivery_ids, [messages[i] for i in delivery_ids])
            else:
                record = kind(now, delivery_ids)
            await self._append(subject, record)
        return set(by_subject)

    async def _has_history(self, subject: str) -> bool:
        """Whether the subject's oldest record is an ``Accepted`` one (a direct get)."""
        js = self._jetstream()
        try:
            first = await js.get_msg(self.names.log_stream, seq=1, subject=subject, next=True)
        except NotFoundError:
            return False
        assert first.data is not None
        return isinstance(msgspec.msgpack.decode(first.data, type=Record), Accepted)
