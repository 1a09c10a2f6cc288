"""Hand-off: fresh deliveries go from the accepting process to the leasing one at accept.

With ``--dispatch worker`` the HTTP process accepts into the SQLite file and the delivery
worker leases from it. Without a hand-off every delivery costs the worker a claim
(``UPDATE … RETURNING``) and a read of its event, in a transaction of its own under the
file's one write lock, which the accepting process needs too. With it, the accepting
process writes an unpartitioned delivery *already leased* — ``due_at = lease_until =
received_at + lease_s``, exactly what a claim would have written — and, once the commit is
synced, sends the rows and the event's stored form over the link. The worker's ``lease``
hands those out first and reads the file only when something else may be due there
(a retry, a redrive, a partitioned or refused-hand-off row, a lease that ran out).

Why nothing is lost: the rows are committed (and synced) before anyone hears of them, and
they are leases like any other. A hand-off frame that never arrives (the link or the
worker died) leaves rows whose lease runs out — or which the next worker releases at its
start — and they are leased from the file then. One handed out and never settled (its
settle failed) is an expired lease like any other: the leasing process looks at the file
again, at the latest, when the earliest lease it handed out runs out.

Bounded: the worker grants credit (deliveries it will hold, not yet leased out); the
accepting process hands off only within it, and writes plain due rows otherwise. Rows a
busy subscription leaves unleased for half their lease go back to the file, so their file
lease can never run out while the worker still holds them (the worker is the file's only
leaser).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

from eventgateway.errors import EventParseError
from eventgateway.events.codec import decode_event, decode_json
from eventgateway.queue._common import Wakeup
from eventgateway.queue.base import Delivery, Room
from eventgateway.queue.sqlite_lease import release_op

if TYPE_CHECKING:
    from eventgateway.queue.sqlite_ops import AcceptOp, PreparedEvent, Refused
    from eventgateway.queue.sqlite_writer import GroupCommitWriter

__all__ = ["HandOff", "HandOffMixin", "HandedDeliveries", "HandedEvent", "less_room"]

logger = logging.getLogger(__name__)

HandedRow = tuple[int, str, str, str, bytes | None]
"""(delivery id, space, subscription id, function id, encoded authorizer request)."""


class HandedEvent(msgspec.Struct, array_like=True):
    """One accepted event and its deliveries, committed as leased until ``lease_until``."""

    body: bytes  # the event as stored (``encode_event``)
    received_at: float
    lease_until: float
    deliveries: list[HandedRow]


class HandOff(Protocol):
    """The accepting side's link to the leasing process (``DispatchLink``)."""

    def reserve(self, count: int) -> int:
        """Credit for ``count`` deliveries: a non-zero ticket, or 0 (write them due)."""

    def hand(self, ticket: int, events: Sequence[HandedEvent], reserved: int) -> None:
        """Send committed ``events`` and give back the ``reserved`` credit of ``ticket``."""


_Held = tuple[Delivery, float]  # a handed delivery and its lease's end


class HandedDeliveries:
    """What the leasing process was handed and has not leased out: per subscription, in
    id order (ids grow with acceptance, so this is oldest first)."""

    __slots__ = ("_by_sub", "_count")

    def __init__(self) -> None:
        self._by_sub: dict[str, collections.deque[_Held]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, events: Sequence[HandedEvent]) -> list[tuple[int, float]]:
        """Hold ``events``' deliveries; the (id, lease end) of rows whose event cannot be
        decoded, for the file path to deal with (it dead-letters them)."""
        unreadable: list[tuple[int, float]] = []
        for handed in events:
            try:
                event = decode_event(handed.body)
            except EventParseError as exc:
                logger.error("a handed event cannot be decoded: %s", exc)
                unreadable.extend((row[0], handed.lease_until) for row in handed.deliveries)
                continue
            for row_id, space, subscription_id, function_id, auth in handed.deliveries:
                delivery = Delivery(
                    id=str(row_id),
                    space=space,
                    subscription_id=subscription_id,
                    function_id=function_id,
                    event=event,  # shared by the event's deliveries (see Delivery)
                    accepted_at=handed.received_at,
                    body=handed.body,
                    auth_request=None if auth is None else decode_json(auth),
                )
                held = self._by_sub.get(subscription_id)
                if held is None:
                    held = self._by_sub[subscription_id] = collections.deque()
                held.append((delivery, handed.lease_until))
                self._count += 1
        return unreadable

    def take(self, max_count: int, exclude: Collection[str], room: Room | None) -> list[_Held]:
        """Up to ``max_count`` held deliveries, oldest first, within each subscription's
        room (none of an excluded one)."""
        # A merge of the subscriptions' queues (each is in id order) by their heads: the
        # work is per delivery taken, not per delivery held, which matters when the
        # dispatcher asks for a few at a time with a thousand held.
        heads: list[tuple[int, str]] = []
        quota: dict[str, int] = {}
        for subscription_id, held in self._by_sub.items():
            if subscription_id in exclude:
                continue
            want = len(held) if room is None else min(len(held), room(subscription_id))
            if want > 0:
                quota[subscription_id] = want
                heads.append((int(held[0][0].id), subscription_id))
        heapq.heapify(heads)
        taken: list[_Held] = []
        while heads and len(taken) < max_count:
            subscription_id = heads[0][1]
            held = self._by_sub[subscription_id]
            taken.append(held.popleft())
            quota[subscription_id] -= 1
            if held and quota[subscription_id]:
                heapq.heapreplace(heads, (int(held[0][0].id), subscription_id))
            else:
                heapq.heappop(heads)
                if not held:
                    del self._by_sub[subscription_id]
        self._count -= len(taken)
        return taken

    def put_back(self, taken: Sequence[_Held]) -> None:
        """Return what :meth:`take` gave, in front (its caller was cancelled)."""
        for delivery, until in reversed(taken):
            held = self._by_sub.get(delivery.subscription_id)
            if held is None:
                held = self._by_sub[delivery.subscription_id] = collections.deque()
            held.appendleft((delivery, until))
            self._count += 1

    def expire(self, horizon: float) -> list[tuple[int, float]]:
        """Drop the deliveries whose lease ends before ``horizon``: their (id, lease end),
        to be released in the file."""
        expired: list[tuple[int, float]] = []
        for subscription_id in list(self._by_sub):
            held = self._by_sub[subscription_id]
            while held and held[0][1] < horizon:
                delivery, until = held.popleft()
                expired.append((int(delivery.id), until))
            if not held:
                del self._by_sub[subscription_id]
        self._count -= len(expired)
        return expired


class HandOffMixin:
    """:class:`~eventgateway.queue.sqlite.SqliteQueue`'s two halves of the hand-off: the
    accepting one (``handoff``) and the leasing one (:meth:`hand`)."""

    _clock: Callable[[], float]
    _lease_s: float
    _closed: bool
    _writer: GroupCommitWriter
    _wakeup: Wakeup
    _writing: Callable[[], GroupCommitWriter]  # the writer, or StoreError if closed

    def _init_handoff(self) -> None:
        # The accepting side: set in the HTTP process of ``--dispatch worker``.
        self.handoff: HandOff | None = None
        # The leasing side: deliveries handed over by the accepting process, and who
        # is told (to grant credit again) as they leave.
        self._handed = HandedDeliveries()
        self._handing = False  # this process was ever handed something
        self.on_handed_out: Callable[[int], None] | None = None
        # Whether the file may hold due deliveries this process has not seen: counts up on
        # every signal that something there changed; a lease that found nothing notes the
        # count it started at, when the next one falls due, and what it excluded (the
        # next due time is of the other subscriptions only).
        self._signals = 0
        self._seen_signals = -1
        self._next_due: float | None = None
        self._seen_exclude: frozenset[str] = frozenset()

    # -- accepting ----------------------------------------------------------------------

    def _reserve(self, prepared: Sequence[PreparedEvent | None]) -> tuple[int, int]:
        handoff = self.handoff
        if handoff is None:
            return 0, 0
        count = sum(
            1 for item in prepared if item for d in item.deliveries if d.partition_key is None
        )
        return (handoff.reserve(count), count) if count else (0, 0)

    async def _accept_handing(
        self, op: AcceptOp, ticket: int, reserved: int
    ) -> list[bool] | Refused:
        handoff = self.handoff
        assert handoff is not None
        # A caller cancelled while the op runs still hands what was committed (orphan);
        # its reservation is given back at once.
        future = self._writing().submit(op, orphan=lambda _: handoff.hand(ticket, op.handed, 0))
        try:
            result = await future
        except asyncio.CancelledError:
            handoff.hand(ticket, [], reserved)
            if future.done() and not future.cancelled() and future.exception() is None:
                handoff.hand(ticket, op.handed, 0)
            raise
        except BaseException:
            # Not committed, or committed and not synced: what was written leased waits out
            # its lease (the client was told to send it again, and the copy is a duplicate).
            handoff.hand(ticket, [], reserved)
            raise
        handoff.hand(ticket, op.handed, reserved)
        return result

    # -- leasing ------------------------------------------------------------------------

    def _release_rows(self, rows: list[tuple[int, float]]) -> None:
        if rows and not self._closed:  # once closed they simply expire
            self._writer.submit(release_op(rows, self._clock()), volatile=True)

    def hand(self, events: Sequence[HandedEvent]) -> None:
        """Hold deliveries that the accepting process committed as leased to this one;
        ``lease`` hands them out before looking at the file. Call on the event loop."""
        if self._closed:
            return
        self._handing = True
        unreadable = self._handed.add(events)
        self._give_back(unreadable)
        self._wakeup.fire()  # not a signal: nothing changed in the file

    def handed(self) -> int:
        """Deliveries handed to this process and not leased out yet."""
        return len(self._handed)

    def _take_handed(
        self, max_count: int, exclude: Collection[str], room: Room | None
    ) -> list[tuple[Delivery, float]]:
        if not self._handed:
            return []
        # Held past half their lease (their subscription is busy): back to the file, so
        # that their lease cannot run out while they are still held here.
        self._give_back(self._handed.expire(self._clock() + self._lease_s / 2))
        return self._handed.take(max_count, exclude, room)

    def _give_back(self, rows: list[tuple[int, float]]) -> None:
        if rows:
            self._release_rows(rows)
            if self.on_handed_out is not None:
                self.on_handed_out(len(rows))

    def _hand_out(self, taken: list[tuple[Delivery, float]]) -> list[Delivery]:
        if taken:
            # Their file leases run out then (unless renewed): look at the file by that
            # time, in case one was never settled (its settle failed).
            ends = min(until for _, until in taken)
            if self._next_due is None or ends < self._next_due:
                self._next_due = ends
            if self.on_handed_out is not None:
                self.on_handed_out(len(taken))
            for delivery, until in taken:
                delivery.lease_until = until  # its lease in the file, for ``extend``
        return [delivery for delivery, _ in taken]

    def _file_may_be_due(self, exclude: frozenset[str]) -> bool:
        if self._signals != self._seen_signals or not self._seen_exclude <= exclude:
            return True  # something changed, or a subscription left out then is not now
        due = self._next_due
        return due is not None and self._clock() >= due


def less_room(room: Room | None, taken: list[tuple[Delivery, float]]) -> Room | None:
    """``room`` less what was taken of each subscription already."""
    if not taken:
        return room
    counts = collections.Counter(delivery.subscription_id for delivery, _ in taken)
    if room is None:
        return lambda subscription_id: (1 << 30) - counts[subscription_id]
    return lambda subscription_id: room(subscription_id) - counts[subscription_id]
