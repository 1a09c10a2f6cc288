"""The delivery metrics collector shows what prometheus_client's own metrics would show."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eventgateway.observability.delivery_metrics import DeliveryMetrics, exponential
from eventgateway.observability.hooks import MetricsHooks
from eventgateway.observability.metrics import Metrics

# On a bound, just past it, below the first, past the last, zero: every bucket edge case.
DURATIONS_S = [0.0, 0.000001, 0.00001, 0.0005, 0.001, 0.0010001, 0.3, 16.384, 40.0, 1e9]
LATENCIES_S = [0.0, 0.0005, 0.0007, 2.0, 4194.304, 9000.0]


class _Library:
    """The same metrics made with prometheus_client's own Counter and Histogram (the
    comparison reads samples only, so their help texts are not repeated here)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        prefix = "eventgateway_"
        self.attempts = Counter(
            f"{prefix}delivery_attempts_total", "-", ["outcome"], registry=registry
        )
        self.processed = Counter(
            f"{prefix}events_processed_total", "-", ["space", "type"], registry=registry
        )
        self.duration, self.processing, self.latency = (
            Histogram(prefix + name, "-", buckets=buckets, registry=registry)
            for name, buckets in (
                ("delivery_duration_seconds", exponential(0.0005, 2, 16)),
                ("events_custom_processing_seconds", exponential(0.00001, 2, 20)),
                ("delivery_latency_seconds", exponential(0.0005, 2, 24)),
            )
        )


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by name and labels; a ``_created`` sample's value (a time) as 0."""
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            out[key] = 0.0 if sample.name.endswith("_created") else sample.value
    return out


def test_the_exposition_matches_prometheus_clients_own_metrics() -> None:
    library = _Library()
    ours = DeliveryMetrics()
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ours)
    for outcome in ("delivered", "failed", "skipped"):
        library.attempts.labels(outcome=outcome)  # the gateway makes all three up front
    for index, duration_s in enumerate(DURATIONS_S):
        outcome = ("delivered", "failed", "skipped")[index % 3]
        ours.attempt(outcome, duration_s)
        library.attempts.labels(outcome=outcome).inc()
        if outcome != "skipped":
            library.duration.observe(duration_s)
            library.processing.observe(duration_s)
    for index, age_s in enumerate(LATENCIES_S):
        space = ("acme", "globex")[index % 2]
        ours.delivered(space, age_s)
        library.processed.labels(space=space, type="custom").inc()
        library.latency.observe(age_s)

    expected = _samples(library.registry)
    assert _samples(registry) == expected
    # The comparison is not empty-handed: it covers the bucket edge cases above (timed:
    # 0, 1e-6, 0.0005 and 0.001 are ≤ 0.001; 1e9 only in +Inf).
    duration = "eventgateway_delivery_duration_seconds_bucket"
    assert expected[(duration, (("le", "0.001"),))] == 4
    assert expected[(duration, (("le", "+Inf"),))] - expected[(duration, (("le", "16.384"),))] == 1
    assert expected[("eventgateway_delivery_latency_seconds_count", ())] == len(LATENCIES_S)
    assert any(name.endswith("_created") for name, _ in expected)


def test_an_unknown_outcome_is_not_counted_and_a_skip_is_not_timed() -> None:
    ours = DeliveryMetrics()
    registry = CollectorRegistry()
    registry.register(ours)
    ours.attempt("exploded", 1.0)  # a newer worker's outcome
    ours.attempt("skipped", 1.0)
    samples = _samples(registry)
    assert samples[("eventgateway_delivery_attempts_total", (("outcome", "skipped"),))] == 1
    assert not any(labels == (("outcome", "exploded"),) for _, labels in samples)
    assert samples[("eventgateway_delivery_duration_seconds_count", ())] == 0
    assert samples[("eventgateway_delivery_duration_seconds_sum", ())] == 0


def test_created_series_follow_prometheus_clients_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    ours = DeliveryMetrics()
    ours.delivered("acme", 0.01)
    registry = CollectorRegistry()
    registry.register(ours)
    text = generate_latest(registry).decode()
    assert "eventgateway_delivery_latency_seconds_count 1.0" in text
    assert "_created" not in text


def test_the_gateways_hooks_count_into_its_metrics() -> None:
    metrics = Metrics()
    hooks = MetricsHooks(metrics)
    hooks.count_attempt("delivered", 0.002)
    hooks.count_settle("acme", "delivered", 0.004)
    hooks.count_settle("acme", "retrying", 0.004)
    text = metrics.render().decode()
    assert 'eventgateway_delivery_attempts_total{outcome="delivered"} 1.0' in text
    assert 'eventgateway_events_processed_total{space="acme",type="custom"} 1.0' in text
    assert 'eventgateway_delivery_latency_seconds_bucket{le="0.004"} 1.0' in text
    assert 'eventgateway_delivery_retries_total{space="acme"} 1.0' in text
    assert math.isclose(
        next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("eventgateway_events_custom_processing_seconds_sum")
        ),
        0.002,
    )


def test_dropped_deliveries_are_counted_per_space_and_type() -> None:
    metrics = Metrics()
    hooks = MetricsHooks(metrics)
    for space, event_type in [("acme", "user.created")] * 3 + [("beta", "user.created")]:
        hooks.count_dropped(space, event_type)
    hooks.count_dropped("acme", "user.deleted")
    text = metrics.render().decode()
    dropped = "eventgateway_events_dropped_total"
    assert f'{dropped}{{space="acme",type="user.created"}} 3.0' in text
    assert f'{dropped}{{space="beta",type="user.created"}} 1.0' in text
    assert f'{dropped}{{space="acme",type="user.deleted"}} 1.0' in text
