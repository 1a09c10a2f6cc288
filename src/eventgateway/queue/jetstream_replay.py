"""Replay on :class:`~eventgateway.queue.jetstream.JetStreamQueue` (rules: :mod:`.replay`).

The selection is read from the delivery log (``<prefix>-log``): one subject per named id
(a space's whole history for many ids; for a window, from the records stored at its
start on), bounded by ``scan_limit``: a read stopped at the limit refuses the replay.
Each new delivery is a new message on the deliveries stream — its id is its stream
sequence — with a ``Nats-Msg-Id`` of its own, so the original's
de-duplication id never suppresses it. A ``Replayed`` record per event, written after the
publishes, shows them in the event's history (the fold applies settles logged before it).

All or nothing, as far as a stream allows: the bounds are checked against the stream's
state just before publishing; if the stream refuses a message anyway (another instance
filled it meanwhile), or NATS fails, the messages this call stored are deleted again and
the call fails. A publish that got no answer is sent again under its ``Nats-Msg-Id`` to
learn its sequence; if that, or a delete, fails too, the error says that some of the new
deliveries may still be made. A dispatcher may have started one of them in that instant.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from nats.js.errors import APIError, NoStreamResponseError

from eventgateway.errors import StoreError, ValidationError
from eventgateway.events.codec import decode_event
from eventgateway.queue.jetstream_history import EventState, Record, Replayed, fold
from eventgateway.queue.jetstream_log import JetStreamLogMixin
from eventgateway.queue.jetstream_publish import Message, PubAck
from eventgateway.queue.jetstream_setup import scan_from
from eventgateway.queue.jetstream_wire import Envelope, is_nats_error, is_stream_full, store_error
from eventgateway.queue.replay import (
    Original,
    Planned,
    ReplayResult,
    Subscriptions,
    not_found,
    plan_event,
    refused,
    too_many,
)
from eventgateway.queue.selection import Selection

__all__ = ["JetStreamReplayMixin"]

logger = logging.getLogger(__name__)

# Up to this many ids are looked up subject by subject; more read the space's history once.
_LOOKUPS: Final = 32
# How far a gateway's clock (an event's acceptance time) may be ahead of the server's
# (the log record's timestamp, which a window's read starts from).
_CLOCK_SKEW_S: Final = 60.0


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        if not is_nats_error(exc):
            raise
        raise store_error(what, exc) from exc


def _maybe_stored(outcome: object) -> bool:
    # An answer from the server (a refusal, "no responders") means it stored nothing.
    return (
        isinstance(outcome, BaseException)
        and is_nats_error(outcome)
        and not isinstance(outcome, APIError | NoStreamResponseError)
    )


def _originals(event: EventState) -> list[Original]:
    auth = event.accepted.auth_request
    ordered = sorted(event.deliveries.values(), key=lambda d: int(d.id))
    return [Original(d.id, d.subscription_id, d.replay_of, auth) for d in ordered]


class JetStreamReplayMixin(JetStreamLogMixin):
    """``replay`` over the log and deliveries streams; the queue provides the rest."""

    _max_deliveries: int
    _max_bytes: int
    _backlog: int
    _bytes: int

    async def _replay(
        self, selected: Selection, subscriptions: Subscriptions, max_events: int
    ) -> ReplayResult:
        # An event whose history the log dropped (shown from its dead letters only) is not
        # found: redrive its dead letters instead. StoreError: NATS failed; what this call
        # stored was deleted again, unless the message says some may still be made.
        async with _translated("read the delivery log"):
            chosen = await self._replay_selection(selected, max_events)
        result = ReplayResult(events=len(chosen))
        plans: list[tuple[EventState, Planned]] = []
        for event in chosen:
            planned = plan_event(
                _originals(event),
                subscription_id=selected.subscription_id,
                subscriptions=subscriptions,
                event=functools.partial(decode_event, event.accepted.body),
                skipped=result.skipped,
            )
            plans += [(event, plan) for plan in planned]
        if not plans:
            return result
        acks = await self._publish_replays(selected.space, plans)
        await self._log_replays(plans, acks)
        result.replayed = len(plans)
        await self._refresh(force=True)
        self._wakeup.fire()
        return result

    async def _replay_selection(self, selected: Selection, max_events: int) -> list[EventState]:
        """The selected events in acceptance order (raises as :meth:`replay`)."""

        space, ids, since = selected.space, selected.ids, selected.since

        def selectable(event: EventState) -> bool:
            return event.accepted.space == space and (
                selected.subscription_id is None
                or any(selected.subscription(d.subscription_id) for d in event.deliveries.values())
            )

        names = self.names
        if ids is None:
            assert since is not None  # check_selection: a window has a start
            # Server timestamps, so read from a little earlier: a gateway whose clock is
            # ahead would otherwise miss the window's first events.
            start = datetime.fromtimestamp(since - _CLOCK_SKEW_S, UTC)
            history = await self._bounded_history(
                names.log_of(space), start, 'choose a later "since", or replay by "ids"'
            )
            events = [e for e in history if selectable(e) and selected.in_window(e.accepted.at)]
            if len(events) > max_events:
                raise too_many(max_events)
            return events
        wanted = list(dict.fromkeys(ids))
        newest: dict[str, EventState] = {}
        fewer = f"name at most {_LOOKUPS} ids per call"
        if len(wanted) <= _LOOKUPS:
            histories = [
                await self._bounded_history(names.log_of(space, i), None, fewer) for i in wanted
            ]
            candidates = [e for history in histories for e in history]
        else:
            candidates = await self._bounded_history(names.log_of(space), None, fewer)
        for e in candidates:
            event_id = e.accepted.event_id
            if selectable(e) and (event_id not in newest or e.seq > newest[event_id].seq):
                newest[event_id] = e
        missing = [i for i in wanted if i not in newest]
        if missing:
            raise not_found(space, missing, selected.subscription_id)
        return sorted((newest[i] for i in wanted), key=lambda e: e.seq)

    async def _bounded_history(
        self, subject: str, start: datetime | None, narrower: str
    ) -> list[EventState]:
        """The events on ``subject`` from ``start``; refused (400) past ``scan_limit``
        records, where a part of the history would silently select nothing."""
        limit = self._scan_limit
        raw, stopped = await scan_from(
            self._jetstream(), self.names.log_stream, subject, limit=limit, start=start
        )
        if stopped:
            raise ValidationError(
                f"The replay would read more than {limit} delivery-log records (the "
                f"scan limit); nothing was replayed. Select less: {narrower}."
            )
        decoder = msgspec.msgpack.Decoder(Record)
        return fold([(seq, subj, decoder.decode(data)) for seq, subj, data in raw])

    async def _publish_replays(
        self, space: str, plans: list[tuple[EventState, Planned]]
    ) -> list[PubAck]:
        """Publish one message per new delivery, or none (see the module docstring)."""
        now, token = self._clock(), uuid.uuid4().hex
        messages: list[Message] = []
        for index, (event, plan) in enumerate(plans):
            envelope = Envelope(
                space=space,
                subscription_id=plan.subscription_id,
                function_id=plan.function_id,
                accepted_at=now,  # a retry policy's max age counts from the replay
                event=event.accepted.body,
                partition_key=plan.partition_key,
                auth_request=plan.auth_request,
                received_at=event.accepted.at,
            )
            # Unique per message: a publish retried after "no responders" is stored once.
            headers = {"Nats-Msg-Id": f"replay-{token}-{index}"}
            payload = msgspec.msgpack.encode(envelope)
            messages.append((self.names.delivery_subject(envelope), payload, headers))
        add_bytes = sum(len(payload) for _, payload, _ in messages)
        async with _translated("replay events"):
            await self._refresh(force=True)
        if (
            self._backlog + len(messages) > self._max_deliveries
            or self._bytes + add_bytes > self._max_bytes
        ):
            raise self._replay_refused(len(messages), add_bytes)
        publisher = self._publishing()
        outcomes = await publisher.publish(messages, self._publish_timeout_s)
        acks = [a for a in outcomes if isinstance(a, PubAck)]
        failures = [a for a in outcomes if not isinstance(a, PubAck)]
        if not failures:
            self._backlog += len(acks)
            self._bytes += add_bytes
            return acks
        # A publish without an answer (timeout, broken connection) was usually stored all
        # the same. Sent again under the same Nats-Msg-Id within the duplicate window, the
        # server answers the sequence it stored (or stores it now): either way deletable.
        unsure = [i for i, outcome in enumerate(outcomes) if _maybe_stored(outcome)]
        again = await publisher.publish([messages[i] for i in unsure], self._publish_timeout_s)
        acks += [a for a in again if isinstance(a, PubAck)]
        left = sum(not isinstance(a, PubAck) for a in again)
        left += await self._take_back(acks)
        for failure in failures:
            if not is_nats_error(failure):
                raise failure
        if left:
            error = store_error("replay events", failures[0])
            raise StoreError(
                f"{error}; {left} of its new deliveries could not be taken back and may "
                "still be made"
            ) from failures[0]
        if all(is_stream_full(f) for f in failures):
            await self._refresh(force=True)
            raise self._replay_refused(len(messages), add_bytes)
        raise store_error("replay events", failures[0]) from failures[0]

    def _replay_refused(self, count: int, add_bytes: int) -> Exception:
        return refused(
            add_deliveries=count,
            add_bytes=add_bytes,
            backlog=self._backlog,
            stored_bytes=self._bytes,
            max_deliveries=self._max_deliveries,
            max_bytes=self._max_bytes,
        )

    async def _take_back(self, acks: list[PubAck]) -> int:
        """Delete the messages a failed replay stored; how many could not be deleted
        (each logged)."""
        js = self._jetstream()
        left = 0
        for ack in acks:
            try:
                await js.delete_msg(self.names.deliveries_stream, ack.seq)
            except Exception as exc:
                if not is_nats_error(exc):
                    raise
                left += 1
                logger.warning(
                    "replay failed, and its delivery message %d could not be deleted; it "
                    "will be delivered: %s",
                    ack.seq,
                    exc,
                )
        return left

    async def _log_replays(
        self, plans: list[tuple[EventState, Planned]], acks: list[PubAck]
    ) -> None:
        # The deliveries are stored already: a lost record only hides them from the log.
        by_subject: dict[str, Replayed] = {}
        now = self._clock()
        for (event, plan), ack in zip(plans, acks, strict=True):
            record = by_subject.setdefault(event.subject, Replayed(now, [], []))
            record.deliveries.append((str(ack.seq), plan.subscription_id, plan.function_id))
            record.replay_of.append(plan.replay_of)
        batch: list[Message] = [
            (subject, msgspec.msgpack.encode(record), None)
            for subject, record in by_subject.items()
        ]
        outcomes: list[Any] = await self._publishing().publish(batch, self._publish_timeout_s)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if not is_nats_error(outcome):
                    raise outcome
                logger.warning("delivery log record of a replay lost: %s", outcome)
