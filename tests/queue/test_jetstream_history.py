"""Folding the JetStream delivery log's records into event views (pure)."""

from __future__ import annotations

from eventgateway.queue.jetstream_history import Accepted, Settled, fold

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
