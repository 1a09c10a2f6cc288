"""Dispatch hooks that turn attempts into Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from eventgateway.dispatch.dispatcher import DispatchHooks
from eventgateway.observability.metrics import Metrics
from eventgateway.queue.base import AttemptRecord, Delivery

__all__ = ["MetricsHooks"]

_MAX_CACHED_SPACES = 10_000


class MetricsHooks(DispatchHooks):
    """Counts attempts, retries, dead letters and delivered events; times deliveries."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._attempts = {
            outcome: metrics.delivery_attempts.labels(outcome=outcome)
            for outcome in ("delivered", "failed", "skipped")
        }
        self._processed: dict[str, Any] = {}

    def after_attempt(self, delivery: Delivery, record: AttemptRecord) -> None:
        self.count_attempt(record.outcome, record.duration_s)

    def after_settle(self, delivery: Delivery, state: str) -> None:
        self.count_settle(delivery.space, state, max(0.0, time.time() - delivery.accepted_at))

    def count_attempt(self, outcome: str, duration_s: float) -> None:
        """An attempt ended with ``outcome`` (``delivered``, ``failed``, ``skipped``)."""
        counter = self._attempts.get(outcome)
        if counter is None:
            return  # from a newer worker: not a label we export
        counter.inc()
        if outcome != "skipped":
            self._metrics.delivery_duration_seconds.observe(duration_s)
            self._metrics.custom_processing_seconds.observe(duration_s)

    def count_settle(self, space: str, state: str, age_s: float) -> None:
        """A delivery of ``space`` settled as ``state``, ``age_s`` after its event came."""
        if state == "delivered":
            processed = self._processed.get(space)
            if processed is None:  # labels() costs a lock and a tuple key per call
                processed = self._metrics.events_processed.labels(space=space, type="custom")
                if len(self._processed) < _MAX_CACHED_SPACES:
                    self._processed[space] = processed
            processed.inc()
            self._metrics.delivery_latency_seconds.observe(age_s)
        elif state == "retrying":
            self._metrics.retries.labels(space=space).inc()
        elif state == "dead":
            self._metrics.dead_letters.labels(space=space).inc()
        elif state == "dropped":
            self._metrics.events_dropped.labels(space=space, type="custom").inc()

    def count_dropped(self, space: str, event_type: str) -> None:
        """An at-most-once delivery was dropped before an attempt: the buffer was full."""
        self._metrics.events_dropped.labels(space=space, type=event_type).inc()
