"""A warning repeated per request is logged at most once per interval, with a count of
what it left out (QA: a full disk logged a line per refused event)."""

from __future__ import annotations

import logging

import pytest

from eventgateway.observability.throttled import ThrottledWarning


def test_at_most_one_line_per_interval_and_then_the_count_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    warning = ThrottledWarning(logging.getLogger("t"), interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        for second in range(25):  # 25 refusals, one a second
            now[0] = 100.0 + second
            warning.warn("could not persist %d event(s): %s", 1, "disk full")

    assert [r.getMessage() for r in caplog.records] == [
        "could not persist 1 event(s): disk full",
        "could not persist 1 event(s): disk full (9 more like it in the last 10 s)",
        "could not persist 1 event(s): disk full (9 more like it in the last 10 s)",
    ]
