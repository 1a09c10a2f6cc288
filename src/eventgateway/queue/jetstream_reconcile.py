"""Writing the delivery-log records of JetStream settles that were lost.

A settle first acks the delivery's message (a dead letter is published before that ack),
then appends its ``Settled`` record to the log (:mod:`.jetstream_settle`). An instance
killed between the two leaves a delivery the queue no longer holds, and will never hand
out again, that its log still shows ``pending``: nothing else would write that record,
and retention keeps an unsettled event forever.

So the retention pass asks the deliveries stream about pending deliveries whose history
has been quiet for ``QUIET_S``: a work-queue stream keeps a message until it is acked, so
one whose current message is gone was settled. If its dead letter is there it is dead
(for the dead letter's reason); if not it was acked after an attempt that delivered (or
skipped) it: only ``ack`` and ``dead_letter`` ack. A ``Settled(reconciled=True)`` record
says so; the lost attempt itself is not known, so none is added. (A message removed from
the stream by hand, ``nats stream purge``, would read as delivered too.)

The log is read before the messages are looked up, and reading a large one takes
seconds while a backlog is delivered: a delivery settled in between is gone from the
stream, its record logged after the read (QA: hundreds to thousands of delivered
deliveries logged again as lost, each then shown with ``LOST_ATTEMPT``). So a delivery
found gone is taken for lost only if, once a settle acked just before its lookup has
had ``settle_s`` (the publish timeout) to log its record, its event's subject still has
no record past the last one the fold read (one direct get). A settle's record stored
later still (its publish timed out, yet was stored) is applied on top; the fold ignores
a reconciled record of a delivery already settled. Each pass looks at most ``BUDGET``
deliveries, starting after the last one it looked at, so a large backlog of truly
pending deliveries is covered over several passes rather than in one long one. The
caller passes a whole log only: from a read cut at ``scan_limit`` the newest settles are
missing, not lost.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from eventgateway.queue.jetstream_dead import dead_letter
from eventgateway.queue.jetstream_history import EventState, Settled
from eventgateway.queue.jetstream_wire import Names

__all__ = ["BUDGET", "QUIET_S", "SETTLE_S", "lost_settles"]

logger = logging.getLogger(__name__)

# A settle's record follows its ack within one publish timeout (5 s by default); a
# delivery quiet for longer than this is worth one lookup.
QUIET_S = 60.0
BUDGET = 1000  # deliveries looked at per pass (a few direct gets each)
SETTLE_S = 5.0  # the queue's publish timeout by default: an ack's record follows within it


async def lost_settles(
    js: JetStreamContext,
    names: Names,
    events: list[EventState],
    *,
    now: float,
    after: int,
    quiet_s: float = QUIET_S,
    budget: int = BUDGET,
    settle_s: float = SETTLE_S,
) -> tuple[list[tuple[str, Settled]], int]:
    """The records to append for pending deliveries the queue no longer holds.

    Args:
        events: the folded log (deliveries redriven by an older version, whose message is
            unknown, are left alone).
        now: the time to record.
        after: the stream sequence the previous pass stopped at.
        settle_s: how long after its ack a settle's record may still be on its way.

    Returns:
        ``(log subject, record)`` pairs, and the sequence to pass as ``after`` next time.
    """
    waiting = sorted(
        (
            (d.message, e.subject, e.last_seq, e.accepted.space, d.id, e.accepted.event_id)
            for e in events
            for d in e.deliveries.values()
            if d.state == "pending" and d.message is not None and now - d.last_at >= quiet_s
        ),
        key=lambda item: item[0],
    )
    if not waiting:
        return [], 0
    info = await js.stream_info(names.deliveries_stream)
    first = info.state.first_seq  # every message before it is gone (acked)
    start = bisect.bisect_right(waiting, after, key=lambda item: item[0])
    gone: list[tuple[int, str, int, str, str, str]] = []
    last, gone_at = after, 0.0
    for looked, item in enumerate(waiting[start:] + waiting[:start]):
        if looked >= budget:  # a bound on the records one pass writes, too
            break
        last = item[0]
        if last < first or not await _held(js, names.deliveries_stream, last):
            gone.append(item)
            gone_at = time.monotonic()
    if gone:
        # A settle acked just before its lookup may not have logged its record yet.
        await asyncio.sleep(max(0.0, gone_at + settle_s - time.monotonic()))
    records: list[tuple[str, Settled]] = []
    for message, subject, read_to, space, delivery_id, event_id in gone:
        if await _logged_since(js, names.log_stream, subject, read_to):
            continue  # settled (or moved) since the log was read: its record is there
        record = await _settled(js, names, space, delivery_id, event_id, message, now)
        logger.warning(
            "delivery log: the settle of delivery %s (%s) was never logged; logged as %s now",
            delivery_id,
            subject,
            record.state,
        )
        records.append((subject, record))
    return records, last


async def _held(js: JetStreamContext, stream: str, seq: int) -> bool:
    try:
        await js.get_msg(stream, seq)
    except NotFoundError:
        return False
    return True


async def _logged_since(js: JetStreamContext, stream: str, subject: str, seq: int) -> bool:
    """Whether the log's last record on ``subject`` is past stream sequence ``seq`` (by
    subject: nats-server 2.9 answers a last-by-subject get ~10x faster than a next one)."""
    try:
        newest = await js.get_msg(stream, subject=subject)
    except NotFoundError:
        return False
    return (newest.seq or 0) > seq


async def _settled(
    js: JetStreamContext,
    names: Names,
    space: str,
    delivery_id: str,
    event_id: str,
    message: int,
    now: float,
) -> Settled:
    found = await dead_letter(js, names, space, delivery_id, event_id)
    if found is None:
        return Settled(now, delivery_id, "delivered", seq=message, reconciled=True)
    dead = found[1]
    return Settled(
        now,
        delivery_id,
        "dead",
        reason=dead.reason,
        seq=message,
        reconciled=True,
        number=dead.attempts,
    )
