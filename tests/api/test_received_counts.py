"""``eventgateway_events_received_total`` keeps a bounded number of series however many
event types are made and deleted (QA: 101 → 13,279 lines of metrics in a churn soak)."""

from __future__ import annotations

from eventgateway.api.received_counts import MAX_TYPE_LABELS, ReceivedCounts
from eventgateway.model.entities import EventType
from eventgateway.observability.metrics import Metrics
from eventgateway.routing.table import RoutingTable


def table_with(*names: str) -> RoutingTable:
    return RoutingTable.build(
        event_types=[EventType(space="acme", name=name) for name in names],
        functions=[],
        subscriptions=[],
        cors=[],
    )


def series(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["type"]: sample.value
        for family in metrics.events_received.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_types_made_and_deleted_one_after_another_stay_under_the_cap() -> None:
    metrics = Metrics()
    counts = ReceivedCounts(metrics)
    for n in range(MAX_TYPE_LABELS + 200):  # each table routes one type, then it is deleted
        counts.count(f"t{n}", table_with(f"t{n}"))

    seen = series(metrics)
    assert len(seen) == MAX_TYPE_LABELS + 2  # the first 1,000, "other" and "custom"
    assert seen["other"] == 200
    assert seen["t0"] == 1


def test_a_labelled_type_keeps_its_series_past_the_cap_and_unconfigured_ones_are_custom() -> None:
    metrics = Metrics()
    counts = ReceivedCounts(metrics)
    counts.count("t0", table_with("t0"))
    for n in range(1, MAX_TYPE_LABELS + 5):
        counts.count(f"t{n}", table_with(f"t{n}"))
    counts.count("t0", table_with("t0", "t9999"))  # a new table, past the cap
    counts.count("nobody.registered", table_with("t0"))

    seen = series(metrics)
    assert seen["t0"] == 2
    assert seen["custom"] == 1
