"""Folding the JetStream delivery log's records into event views (pure)."""

from __future__ import annotations

from typing import Any

import msgspec

from eventgateway.queue.jetstream_history import (
    LOST_ATTEMPT,
    Accepted,
    Record,
    Redriven,
    Replayed,
    Settled,
    fold,
)
from eventgateway.queue.jetstream_wire import Envelope

SUBJECT = "eg.log.acme.e1"


def accepted(at: float = 1.0) -> Accepted:
    return Accepted(
        at=at,
        space="acme",
        source="/s",
        event_id="e1",
        type="user.created",
        specversion="1.0",
        body=b"{}",
        deliveries=[("11", "sub-1", "crm"), ("12", "sub-2", "mail")],
    )


def test_a_settle_logged_before_the_accept_still_counts():
    # Another instance can lease, deliver and log a delivery before the accepting
    # instance has written its Accepted record: stream order is settle, then accept.
    records = [
        (1, SUBJECT, Settled(at=1.5, delivery_id="11", state="delivered")),
        (2, SUBJECT, accepted()),
        (3, SUBJECT, Settled(at=2.0, delivery_id="12", state="delivered")),
    ]

    [event] = fold(records)

    assert {d.id: d.state for d in event.deliveries.values()} == {
        "11": "delivered",
        "12": "delivered",
    }
    assert event.state() == "delivered"


def test_settles_of_an_event_never_accepted_show_nothing():
    records = [(1, SUBJECT, Settled(at=1.5, delivery_id="11", state="delivered"))]

    assert fold(records) == []


FAILED = (1.0, 10.0, "failed", 500, "HTTP 500")
DELIVERED = (5.0, 10.0, "delivered", 200, "")


def one_delivery(records):
    [event] = fold([(1, SUBJECT, accepted()), *records])
    return event.deliveries["11"]


def test_a_redriven_delivery_settled_before_its_redrive_was_logged_is_delivered():
    # The redrive publishes the new message (seq 20) before it writes Redriven, so the
    # new message's settle can come first; the Redriven record must not undo it.
    d = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "dead", FAILED, reason="gave up", seq=11)),
            (3, SUBJECT, Settled(4.0, "11", "delivered", DELIVERED, seq=20)),
            (4, SUBJECT, Redriven(3.0, ["11"], [20])),
        ]
    )

    assert (d.state, d.attempts, d.dead_reason, d.log) == ("delivered", 1, "", [FAILED, DELIVERED])


def test_a_lost_redriven_record_is_implied_by_the_new_messages_settle():
    d = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "dead", FAILED, reason="gave up", seq=11)),
            (3, SUBJECT, Settled(4.0, "11", "pending", FAILED, due_at=9.0, seq=20)),
        ]
    )

    assert (d.state, d.attempts, d.dead_reason, d.due_at) == ("pending", 1, "", 9.0)


def test_a_settle_of_the_message_before_a_redrive_logged_late_is_history_only():
    d = one_delivery(
        [
            (2, SUBJECT, Redriven(3.0, ["11"], [20])),
            (3, SUBJECT, Settled(2.0, "11", "dead", FAILED, reason="gave up", seq=11)),
        ]
    )

    assert (d.state, d.attempts, d.dead_reason, d.log) == ("pending", 0, "", [FAILED])


def test_records_without_sequences_fold_in_stream_order():
    # Records written before settles carried their message's sequence.
    d = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "dead", FAILED, reason="gave up")),
            (3, SUBJECT, Redriven(3.0, ["11"])),
            (4, SUBJECT, Settled(4.0, "11", "delivered", DELIVERED, seq=20)),
        ]
    )

    assert (d.state, d.attempts, d.message) == ("delivered", 1, 20)


def test_a_reconciled_settle_says_its_attempt_was_not_logged():
    d = one_delivery([(2, SUBJECT, Settled(70.0, "11", "delivered", seq=11, reconciled=True))])

    assert (d.state, d.attempts, d.last_error, d.log) == ("delivered", 0, LOST_ATTEMPT, [])


def test_attempts_follow_the_numbers_the_retry_policy_counted():
    # Attempt 1 was cut off by a crash (no record); attempts 3 and 2 were logged in
    # that order (the second's record was slow: its retry came first), so the second's
    # "pending" is older news than the third's "dead". Records of earlier builds carry no
    # number.
    second = (4.0, 10.0, "failed", 503, "HTTP 503")
    third = (8.0, 10.0, "failed", 500, "HTTP 500")
    d = one_delivery(
        [
            (2, SUBJECT, Settled(9.0, "11", "dead", third, reason="gave up", seq=11, number=3)),
            (3, SUBJECT, Settled(5.0, "11", "pending", second, due_at=8.0, seq=11, number=2)),
        ]
    )
    unnumbered = one_delivery([(2, SUBJECT, Settled(5.0, "11", "pending", FAILED, seq=11))])

    assert (d.state, d.attempts, d.dead_reason, d.due_at) == ("dead", 3, "gave up", None)
    assert (d.log, d.last_status) == ([second, third], 500)
    # Numbered as counted, in start order: the first attempt has no entry.
    assert [a.attempt for a in d.view(10.0).attempt_log] == [2, 3]
    assert (unnumbered.attempts, len(unnumbered.log)) == (1, 1)
    assert [a.attempt for a in unnumbered.view(10.0).attempt_log] == [1]


def test_a_redrive_counts_attempts_from_zero_again():
    d = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "dead", FAILED, reason="gave up", seq=11, number=4)),
            (3, SUBJECT, Redriven(3.0, ["11"], [20])),
            (4, SUBJECT, Settled(4.0, "11", "delivered", DELIVERED, seq=20, number=1)),
        ]
    )

    assert (d.state, d.attempts) == ("delivered", 1)
    # The log numbers on across the redrive, as the other backends do, after the 4 counted.
    assert [a.attempt for a in d.view(10.0).attempt_log] == [4, 5]


def test_a_reconciled_settle_logged_after_the_settles_own_record_is_ignored():
    # QA: retention read the log, a backlog's delivery was settled and logged meanwhile,
    # and retention then logged it as a lost settle: shown with LOST_ATTEMPT, delivered.
    d = one_delivery(
        [
            (2, SUBJECT, Settled(5.0, "11", "delivered", DELIVERED, seq=11)),
            (3, SUBJECT, Settled(70.0, "11", "delivered", seq=11, reconciled=True)),
        ]
    )

    assert (d.state, d.attempts, d.last_error, d.log) == ("delivered", 1, "", [DELIVERED])


def test_a_reconciled_settle_after_a_retry_still_says_the_attempt_was_not_logged():
    d = one_delivery(
        [
            (2, SUBJECT, Settled(5.0, "11", "pending", FAILED, due_at=9.0, seq=11)),
            (3, SUBJECT, Settled(70.0, "11", "delivered", seq=11, reconciled=True)),
        ]
    )

    assert (d.state, d.attempts, d.last_error) == ("delivered", 1, LOST_ATTEMPT)


def test_a_replayed_delivery_settled_before_its_replay_was_logged_is_delivered():
    # A replay publishes the new message (seq 30) before it writes Replayed, so another
    # instance can deliver it and log the settle first: it must count once the record
    # that names the delivery arrives.
    records = [
        (1, SUBJECT, accepted()),
        (2, SUBJECT, Settled(at=2.0, delivery_id="11", state="delivered", attempt=DELIVERED)),
        (3, SUBJECT, Settled(at=3.0, delivery_id="30", state="delivered", attempt=DELIVERED)),
        (4, SUBJECT, Replayed(at=2.5, deliveries=[("30", "sub-1", "crm")], replay_of=["11"])),
    ]

    [event] = fold(records)

    replayed = event.deliveries["30"]
    assert (replayed.state, replayed.attempts, replayed.replay_of) == ("delivered", 1, "11")
    assert event.view(4.0).deliveries[-1].replay_of == "11"
    assert event.deliveries["11"].replay_of is None


def test_an_accepted_record_keeps_the_authorizer_request():
    request = {"headers": {"authorization": ["Bearer x"]}}
    record = msgspec.structs.replace(accepted(), auth_request=request)

    [event] = fold(
        [(1, SUBJECT, msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=Record))]
    )

    assert event.accepted.auth_request == request


class _EarlierEnvelope(msgspec.Struct, array_like=True, omit_defaults=True):
    """``Envelope`` as builds before ``received_at`` had it."""

    space: str
    subscription_id: str
    function_id: str
    accepted_at: float
    event: bytes
    partition_key: str | None = None
    auth_request: dict[str, Any] | None = None
    delivery_id: str | None = None


def test_a_redriven_envelope_is_read_by_earlier_builds_and_keeps_the_receipt():
    redriven = Envelope("acme", "sub-1", "crm", 50.0, b"{}", delivery_id="11", received_at=1.0)

    earlier = msgspec.msgpack.decode(msgspec.msgpack.encode(redriven), type=_EarlierEnvelope)
    from_earlier = msgspec.msgpack.decode(msgspec.msgpack.encode(earlier), type=Envelope)

    assert (earlier.accepted_at, earlier.delivery_id) == (50.0, "11")  # max age from 50
    assert (redriven.received, from_earlier.received) == (1.0, 50.0)


def test_a_carried_settle_of_a_newer_message_keeps_the_attempts():
    # Deferred (message 20) and moved back (30): the same delivery on newer messages,
    # so its failed attempt still counts. Not carried, the same record is a redrive.
    carried = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "pending", FAILED, due_at=3.0, seq=11)),
            (3, SUBJECT, Settled(3.0, "11", "pending", due_at=18.0, seq=20, carried=True)),
            (4, SUBJECT, Settled(18.0, "11", "pending", seq=30, carried=True)),
        ]
    )
    redriven = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "pending", FAILED, due_at=3.0, seq=11)),
            (3, SUBJECT, Settled(3.0, "11", "pending", due_at=18.0, seq=20)),
        ]
    )

    assert (carried.state, carried.attempts, carried.log, carried.message) == (
        "pending",
        1,
        [FAILED],
        30,
    )
    assert carried.due_at is None  # moved back: leasable now
    assert (redriven.attempts, redriven.message, redriven.log) == (0, 20, [FAILED])


def test_a_moved_deliverys_settle_logged_before_the_move_is_not_undone_by_it():
    # The mover publishes, then logs; another instance may deliver the moved message
    # (30) and log that first. The move's record, and the deferral's (20) after it,
    # are older news.
    d = one_delivery(
        [
            (2, SUBJECT, Settled(2.0, "11", "pending", FAILED, due_at=3.0, seq=11)),
            (3, SUBJECT, Settled(19.0, "11", "delivered", DELIVERED, seq=30, carried=True)),
            (4, SUBJECT, Settled(18.0, "11", "pending", seq=30, carried=True)),
            (5, SUBJECT, Settled(3.0, "11", "pending", due_at=18.0, seq=20, carried=True)),
        ]
    )

    assert (d.state, d.attempts, d.log, d.message) == ("delivered", 2, [FAILED, DELIVERED], 30)


def test_a_moved_deliverys_dead_letter_without_an_attempt_is_applied_after_the_move():
    # Given up before an attempt (its max age passed while deferred): no attempt, and
    # still not a move's record.
    d = one_delivery(
        [
            (2, SUBJECT, Settled(18.0, "11", "pending", seq=30, carried=True)),
            (3, SUBJECT, Settled(19.0, "11", "dead", reason="too old", seq=30, carried=True)),
        ]
    )

    assert (d.state, d.dead_reason, d.message) == ("dead", "too old", 30)


def test_a_deferred_envelope_is_read_by_earlier_builds_and_theirs_by_this_one():
    deferred = Envelope(
        "acme", "sub-1", "crm", 50.0, b"{}", delivery_id="11", attempts_before=2, deferred=1
    )

    earlier = msgspec.msgpack.decode(msgspec.msgpack.encode(deferred), type=_EarlierEnvelope)
    from_earlier = msgspec.msgpack.decode(msgspec.msgpack.encode(earlier), type=Envelope)

    assert earlier.delivery_id == "11"
    assert (from_earlier.attempts_before, from_earlier.due_at, from_earlier.deferred) == (
        0,
        None,
        0,
    )
