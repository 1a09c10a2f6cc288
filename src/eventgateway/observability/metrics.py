"""Prometheus metrics, with the original gateway's metric names (contract §4.8).

One :class:`Metrics` per app, on its own registry, so that tests and several apps in one
process never share counters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import (
    exposition as _exposition,
)

from eventgateway.observability.delivery_metrics import DeliveryMetrics, exponential

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = _exposition.CONTENT_TYPE_LATEST


class Metrics:
    """The gateway's metrics on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Awaited by ``GET /v1/metrics`` before it renders: brings figures that are cached
        # copies of a shared store's (the JetStream backlog) up to date.
        self.before_render: Callable[[], Awaitable[None]] | None = None
        r = self.registry
        self.events_received = Counter(
            "eventgateway_events_received_total",
            "Events received by the Events API.",
            ["space", "type"],
            registry=r,
        )
        # Attempts, durations, deliveries per space and their latency: counted per
        # delivery, so by a collector of our own (see its module).
        self.deliveries = DeliveryMetrics()
        r.register(self.deliveries)
        self.events_dropped = Counter(
            "eventgateway_events_dropped_total",
            "At-most-once deliveries dropped because the buffer was full.",
            ["space", "type"],
            registry=r,
        )
        self.events_filtered = Counter(
            "eventgateway_events_filtered_total",
            "Async deliveries not made because the subscription's filter did not match.",
            ["space"],
            registry=r,
        )
        self.events_backlog = Gauge(
            "eventgateway_events_backlog",
            "Deliveries waiting to be made.",
            registry=r,
        )
        self.eventtypes_total = Gauge(
            "eventgateway_eventtypes_total", "Event types per space.", ["space"], registry=r
        )
        self.functions_total = Gauge(
            "eventgateway_functions_total", "Functions per space.", ["space"], registry=r
        )
        self.subscriptions_total = Gauge(
            "eventgateway_subscriptions_total", "Subscriptions per space.", ["space"], registry=r
        )
        self.cors_total = Gauge(
            "eventgateway_cors_total", "CORS configurations per space.", ["space"], registry=r
        )
        self.config_requests = Counter(
            "eventgateway_config_requests_total",
            "Configuration API requests.",
            ["space", "resource", "operation"],
            registry=r,
        )
        self.config_request_duration_seconds = Histogram(
            "eventgateway_config_request_duration_seconds",
            "Configuration API request duration.",
            buckets=exponential(0.0005, 2, 16),
            registry=r,
        )
        self.retries = Counter(
            "eventgateway_delivery_retries_total",
            "Deliveries scheduled for another attempt.",
            ["space"],
            registry=r,
        )
        self.dead_letters = Counter(
            "eventgateway_dead_letters_total",
            "Deliveries given up on and dead-lettered.",
            ["space"],
            registry=r,
        )
        self.given_up = Counter(
            "eventgateway_deliveries_given_up_total",
            "At-most-once deliveries whose one attempt failed (not retried, not kept).",
            ["space"],
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (see :attr:`before_render`)."""
        return generate_latest(self.registry)

    def set_entity_counts(self, counts: dict[str, dict[str, int]]) -> None:
        """Set the per-space gauges of entities from ``space → kind → count``."""
        gauges = {
            "eventtypes": self.eventtypes_total,
            "functions": self.functions_total,
            "subscriptions": self.subscriptions_total,
            "cors": self.cors_total,
        }
        for gauge in gauges.values():
            gauge.clear()  # a deleted space's series go
        for space, by_kind in counts.items():
            for kind, count in by_kind.items():
                gauges[kind].labels(space=space).set(count)
