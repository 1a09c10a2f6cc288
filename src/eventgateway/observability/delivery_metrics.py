"""The per-delivery metrics, counted in plain Python and exposed by one collector.

Every attempt and every settlement is counted: an attempt adds to a counter and two
histograms, a delivery to a counter and a third histogram. prometheus_client's
``Counter`` and ``Histogram`` take a lock per increment and find a bucket by walking the
bounds, ~4 µs per delivery in all; with ``--dispatch worker`` that was a quarter of the
HTTP process's event-loop CPU in a 1 → 10 fan-out (the worker sends its attempts and
settlements back in batches, and the gateway counts them one by one). Here a delivery
costs two bisections and a few integer additions (~0.8 µs), and the samples are built when
``/v1/metrics`` is read, with the same names, buckets and ``_created`` series as the
library's own metrics would show.

Counting and collecting both happen on the gateway's event loop, so no lock is taken.
"""

from __future__ import annotations

import bisect
import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["DeliveryMetrics", "exponential"]

ATTEMPT_OUTCOMES = ("delivered", "failed", "skipped")
# prometheus_client's own format of a bucket's ``le`` label (untyped there).
_le = cast(Callable[[float], str], floatToGoString)


def exponential(start: float, factor: float, count: int) -> list[float]:
    """``count`` bucket bounds from ``start``, each ``factor`` times the one before."""
    return [start * factor**i for i in range(count)]


class _Buckets:
    """One histogram without labels: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "documentation", "labels", "name", "sum")

    def __init__(self, name: str, documentation: str, bounds: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = list(bounds)
        self.labels = [_le(b) for b in self.bounds] + ["+Inf"]
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf's own
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le).
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, created: float | None) -> Metric:
        cumulative = itertools.accumulate(self.counts)
        buckets = [(le, float(n)) for le, n in zip(self.labels, cumulative, strict=True)]
        family = HistogramMetricFamily(
            self.name, self.documentation, buckets=buckets, sum_value=self.sum
        )
        if created is not None:
            family.add_sample(f"{self.name}_created", {}, created)
        return family


class _Count:
    """A labelled counter's child: its value and when it was first counted."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()


class DeliveryMetrics(Collector):
    """Attempts, their durations, deliveries per space and their latency.

    Exposes ``eventgateway_delivery_attempts_total{outcome}``,
    ``eventgateway_delivery_duration_seconds``, ``eventgateway_events_custom_processing_seconds``
    (the original's name for the same duration), ``eventgateway_events_processed_total{space,
    type}`` and ``eventgateway_delivery_latency_seconds`` (accept → delivered).

    The ``_created`` series are shown unless ``PROMETHEUS_DISABLE_CREATED_SERIES`` is set,
    as for prometheus_client's own metrics.
    """

    def __init__(self) -> None:
        self._show_created = os.environ.get(
            "PROMETHEUS_DISABLE_CREATED_SERIES", "False"
        ).lower() not in ("true", "1", "t")
        self._created = time.time()
        self._attempts = dict.fromkeys(ATTEMPT_OUTCOMES, 0)
        self._duration = _Buckets(
            "eventgateway_delivery_duration_seconds",
            "Duration of one delivery attempt.",
            exponential(0.0005, 2, 16),
        )
        self._processing = _Buckets(
            "eventgateway_events_custom_processing_seconds",
            "Time to deliver one async event to one function.",
            exponential(0.00001, 2, 20),
        )
        self._latency = _Buckets(
            "eventgateway_delivery_latency_seconds",
            "From accepting an event to its successful delivery.",
            exponential(0.0005, 2, 24),
        )
        self._processed: dict[str, _Count] = {}

    def attempt(self, outcome: str, duration_s: float) -> None:
        """An attempt ended with ``outcome``; an outcome not listed above is not counted."""
        attempts = self._attempts
        if outcome not in attempts:
            return  # from a newer worker: not a label we export
        attempts[outcome] += 1
        if outcome != "skipped":
            self._duration.observe(duration_s)
            self._processing.observe(duration_s)

    def delivered(self, space: str, age_s: float) -> None:
        """A delivery of ``space`` succeeded ``age_s`` after its event was accepted."""
        processed = self._processed.get(space)
        if processed is None:
            processed = self._processed[space] = _Count()
        processed.value += 1
        self._latency.observe(age_s)

    def collect(self) -> Iterator[Metric]:
        created = self._created if self._show_created else None
        attempts = CounterMetricFamily(
            "eventgateway_delivery_attempts_total",
            "Delivery attempts by outcome (delivered, failed, skipped).",
            labels=["outcome"],
        )
        for outcome, count in self._attempts.items():
            attempts.add_metric([outcome], count, created=created)
        processed = CounterMetricFamily(
            "eventgateway_events_processed_total",
            "Events delivered to a function.",
            labels=["space", "type"],
        )
        for space, child in self._processed.items():
            processed.add_metric(
                [space, "custom"], child.value, created=child.created if created else None
            )
        yield processed
        yield self._processing.family(created)
        yield attempts
        yield self._duration.family(created)
        yield self._latency.family(created)
