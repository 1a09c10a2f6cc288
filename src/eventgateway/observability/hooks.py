"""Dispatch hooks that turn attempts into Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from eventgateway.dispatch.dispatcher import DispatchHooks
from eventgateway.observability.metrics import Metrics
from eventgateway.queue.base import AttemptRecord, Delivery

__all__ = ["MetricsHooks"]


class MetricsHooks(DispatchHooks):
    """Counts attempts, retries, dead letters and delivered events; times deliveries."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._deliveries = metrics.deliveries
        # A full at-most-once buffer drops thousands of deliveries a second; looking the
        # labelled child up each time cost ~1.7 µs a drop against ~0.35 µs for ``inc``.
        # Bounded: a drop's (space, type) is one a subscription was made for.
        self._dropped: dict[tuple[str, str], Any] = {}

    def after_attempt(self, delivery: Delivery, record: AttemptRecord) -> None:
        self.count_attempt(record.outcome, record.duration_s)

    def after_settle(self, delivery: Delivery, state: str) -> None:
        self.count_settle(delivery.space, state, max(0.0, time.time() - delivery.accepted_at))

    def count_attempt(self, outcome: str, duration_s: float) -> None:
        """An attempt ended with ``outcome`` (``delivered``, ``failed``, ``skipped``)."""
        self._deliveries.attempt(outcome, duration_s)

    def count_settle(self, space: str, state: str, age_s: float) -> None:
        """A delivery of ``space`` settled as ``state``, ``age_s`` after its event came (or
        after the replay or redrive that made it due again)."""
        if state == "delivered":
            self._deliveries.delivered(space, age_s)
        elif state == "retrying":
            self._metrics.retries.labels(space=space).inc()
        elif state == "dead":
            self._metrics.dead_letters.labels(space=space).inc()
        elif state == "dropped":  # at most once: its one attempt failed
            self._metrics.given_up.labels(space=space).inc()

    def count_dropped(self, space: str, event_type: str) -> None:
        """An at-most-once delivery was dropped before an attempt: the buffer was full."""
        child = self._dropped.get((space, event_type))
        if child is None:
            child = self._metrics.events_dropped.labels(space=space, type=event_type)
            self._dropped[(space, event_type)] = child
        child.inc()
