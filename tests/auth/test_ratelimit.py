"""Token buckets, table-tested on an explicit clock: no sleeping, no timing."""

from __future__ import annotations

import pytest

from eventgateway.auth.ratelimit import BucketTable, RateLimit, acquire
from eventgateway.errors import ConfigError

TEN_PER_S = RateLimit(10.0, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000/2000", RateLimit(1000.0, 2000)),
        ("1000", RateLimit(1000.0, 2000)),
        ("0.5", RateLimit(0.5, 1)),
        ("0.5/3", RateLimit(0.5, 3)),
        (" 5/1 ", RateLimit(5.0, 1)),
        ("0", RateLimit.UNLIMITED),
        ("0/10", RateLimit.UNLIMITED),
    ],
)
def test_rate_limits_parse_from_rate_and_optional_burst(text, expected):
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "10/", "10/x", "-1", "10/0", "inf", "nan", "1/2/3"])
def test_bad_rate_limits_are_refused_quoting_the_value(text):
    with pytest.raises(ConfigError) as caught:
        RateLimit.parse(text)

    assert "rate" in str(caught.value) or "burst" in str(caught.value)


def test_rate_limits_read_as_rate_slash_burst():
    assert str(RateLimit(1000.0, 2000)) == "1000/2000"
    assert str(RateLimit.UNLIMITED) == "unlimited"
    assert RateLimit.UNLIMITED.unlimited
    assert not TEN_PER_S.unlimited


def test_an_unlimited_rate_needs_no_table():
    with pytest.raises(ConfigError):
        BucketTable(RateLimit.UNLIMITED)


# (seconds since start, events asked for, expected wait in seconds: 0 means taken)
SCENARIOS = {
    "the burst passes at once, then one more waits a tenth": [
        (0.0, 20, 0.0),
        (0.0, 1, 0.1),
    ],
    "tokens come back at the rate": [
        (0.0, 20, 0.0),
        (0.5, 5, 0.0),
        (0.5, 1, 0.1),
    ],
    "a refused request spends nothing": [
        (0.0, 15, 0.0),
        (0.0, 10, 0.5),
        (0.0, 5, 0.0),
    ],
    "refill stops at the burst": [
        (0.0, 20, 0.0),
        (100.0, 20, 0.0),
        (100.0, 1, 0.1),
    ],
    "a batch over the burst passes on a full bucket and leaves debt": [
        (0.0, 50, 0.0),
        (0.0, 1, 3.1),
        (3.0, 1, 0.1),
        (3.1, 1, 0.0),
    ],
    "a batch over the burst waits for a full bucket": [
        (0.0, 10, 0.0),
        (0.0, 50, 1.0),
        (1.0, 50, 0.0),
    ],
    "a clock stepping back refills nothing": [
        (10.0, 20, 0.0),
        (5.0, 1, 0.1),
        (10.1, 1, 0.0),
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_bucket_scenarios(steps):
    table = BucketTable(TEN_PER_S)

    waits = [acquire(n, now, ((table, "acme"),)) for now, n, _ in steps]

    assert waits == pytest.approx([wait for _, _, wait in steps])


def test_keys_have_their_own_buckets():
    table = BucketTable(TEN_PER_S)

    assert acquire(20, 0.0, ((table, "acme"),)) == 0.0
    assert acquire(20, 0.0, ((table, "beta"),)) == 0.0
    assert acquire(1, 0.0, ((table, "acme"),)) > 0


def test_a_request_refused_by_one_table_spends_nothing_from_the_other():
    spaces = BucketTable(RateLimit(10.0, 100))
    keys = BucketTable(RateLimit(1.0, 5))

    claims = ((spaces, "acme"), (keys, "k1"))
    assert acquire(5, 0.0, claims) == 0.0
    assert acquire(1, 0.0, claims) == pytest.approx(1.0)

    assert acquire(95, 0.0, ((spaces, "acme"),)) == 0.0  # the refusal left the 95
    assert acquire(1, 0.0, ((spaces, "acme"),)) > 0


def test_wait_is_the_longest_of_the_refusals():
    slow = BucketTable(RateLimit(1.0, 1))
    fast = BucketTable(RateLimit(100.0, 1))
    acquire(1, 0.0, ((slow, "a"), (fast, "a")))

    assert acquire(1, 0.0, ((slow, "a"), (fast, "a"))) == pytest.approx(1.0)


def test_idle_buckets_are_dropped_when_the_table_is_full():
    table = BucketTable(TEN_PER_S, max_buckets=100)
    for index in range(100):
        table.take(f"space-{index}", 1, 0.0)

    # At 1 s every bucket has refilled: all of them are idle and go.
    table.take("late", 1, 1.0)

    assert len(table) == 1


def test_active_buckets_are_dropped_oldest_first_and_memory_stays_bounded():
    table = BucketTable(TEN_PER_S, max_buckets=100)
    for index in range(1_000):  # a new key per request, none of them refilled yet
        table.take(f"space-{index}", 20, 0.0)
        assert len(table) <= 100

    assert table.wait_s("space-999", 1, 0.0) > 0  # the newest survived
    assert table.wait_s("space-0", 1, 0.0) == 0.0  # the oldest was forgotten


def test_a_busy_bucket_survives_a_sweep_of_idle_ones():
    table = BucketTable(TEN_PER_S, max_buckets=10)
    table.take("busy", 20, 0.0)
    for index in range(9):
        table.take(f"idle-{index}", 1, 0.0)

    table.take("new", 1, 1.0)  # idle ones have refilled by now; "busy" has 10 of 20

    assert len(table) == 2
    assert table.wait_s("busy", 20, 1.0) == pytest.approx(1.0)
