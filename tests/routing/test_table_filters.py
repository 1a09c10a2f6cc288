"""RoutingTable and subscription filters: compiled once per build, kept on the targets."""

from __future__ import annotations

import logging
from typing import Any

from eventgateway.model.entities import Subscription
from eventgateway.routing.filters import EventFilter
from eventgateway.routing.table import RoutingTable


def sub(sub_id: str, *, type: str = "async", filter: dict[str, Any] | None = None) -> Subscription:
    return Subscription(
        space="acme",
        subscription_id=sub_id,
        type=type,
        event_type="user.created",
        function_id=sub_id,
        path="/acme",
        method="POST",
        filter=filter,
    )


def build(*subscriptions: Subscription) -> RoutingTable:
    return RoutingTable.build(event_types=[], functions=[], subscriptions=subscriptions, cors=[])


def test_filters_are_compiled_when_the_table_is_built():
    table = build(sub("plain"), sub("pro", filter={"data": {"plan": ["pro"]}}))

    first = table.async_targets("POST", "/acme", "user.created")
    again = table.async_targets("POST", "/acme", "user.created")

    assert [t.subscription.subscription_id for t in first] == ["plain", "pro"]
    assert first[0].matcher is None
    assert isinstance(first[1].matcher, EventFilter)
    assert again[1].matcher is first[1].matcher  # not compiled again per lookup
    assert table.target("acme", "pro") is first[1]


def test_a_stored_filter_that_does_not_compile_keeps_its_subscription_out(caplog):
    with caplog.at_level(logging.WARNING, logger="eventgateway.routing.table"):
        table = build(sub("plain"), sub("bad", filter={"data": {"plan": "pro"}}))

    targets = table.async_targets("POST", "/acme", "user.created")
    assert [t.subscription.subscription_id for t in targets] == ["plain"]
    assert "Async subscription bad in space acme skipped: its filter is invalid" in caplog.text
    assert "filter.data.plan must be a list" in caplog.text


def test_a_sync_subscription_never_gets_a_matcher():
    # The config API refuses this; data written some other way must not filter a sync route.
    table = build(sub("s", type="sync", filter={"source": ["/x"]}))

    match = table.sync("POST", "/acme", "user.created")

    assert match is not None
    assert match.target.matcher is None
