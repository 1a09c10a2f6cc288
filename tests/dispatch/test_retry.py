"""The retry policy: backoff shapes, cap, jitter, Retry-After, give-up rules, default span."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.dispatch.retry import RetryDecision, decide, next_delay_s
from eventgateway.model.entities import DEFAULT_RETRY_POLICY, RetryPolicy


def one() -> float:
    return 1.0


def half() -> float:
    return 0.5


def zero() -> float:
    return 0.0


NO_JITTER = RetryPolicy(jitter=False)

# -- next_delay_s ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "attempt", "delay_s"),
    [
        ("exponential", 1, 1.0),
        ("exponential", 2, 2.0),
        ("exponential", 3, 4.0),
        ("exponential", 4, 8.0),
        ("exponential", 7, 60.0),  # 64 s, capped
        ("linear", 1, 1.0),
        ("linear", 2, 2.0),
        ("linear", 5, 5.0),
        ("linear", 61, 60.0),  # capped
        ("constant", 1, 1.0),
        ("constant", 50, 1.0),
    ],
)
def test_backoff_shapes_and_cap(backoff: str, attempt: int, delay_s: float) -> None:
    policy = RetryPolicy(backoff=backoff, initial_delay_ms=1_000, max_delay_ms=60_000, jitter=False)

    assert next_delay_s(policy, attempt) == delay_s


@pytest.mark.parametrize(
    ("initial_ms", "cap_ms", "attempt", "delay_s"),
    [
        (0, 0, 1, 0.0),  # zero initial delay: retry at once
        (0, 10_000, 30, 0.0),
        (250, 250, 1, 0.25),  # cap equal to the initial delay
        (5_000, 7_200_000, 1_000, 7_200.0),  # huge attempt numbers stay cheap and capped
        (5_000, 7_200_000, 10**9, 7_200.0),
    ],
)
def test_exponential_edges(initial_ms: int, cap_ms: int, attempt: int, delay_s: float) -> None:
    policy = RetryPolicy(initial_delay_ms=initial_ms, max_delay_ms=cap_ms, jitter=False)

    assert next_delay_s(policy, attempt) == delay_s


@pytest.mark.parametrize(
    ("rand", "delay_s"), [(zero, 0.0), (half, 10.0), (one, 20.0), (lambda: 0.999, 19.98)]
)
def test_full_jitter_scales_the_capped_delay(rand, delay_s: float) -> None:
    policy = RetryPolicy(initial_delay_ms=5_000, max_delay_ms=60_000)  # jitter on by default

    assert next_delay_s(policy, 3, rand=rand) == pytest.approx(delay_s)


def test_jitter_stays_within_zero_and_the_cap_with_the_real_rand() -> None:
    policy = RetryPolicy(initial_delay_ms=1_000, max_delay_ms=30_000)

    delays = [next_delay_s(policy, attempt) for attempt in range(1, 40) for _ in range(20)]

    assert all(0.0 <= d <= 30.0 for d in delays)


def test_rand_is_not_called_without_jitter() -> None:
    def fail() -> float:
        raise AssertionError("rand called")

    assert next_delay_s(NO_JITTER, 1, rand=fail) == 5.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_below_one_is_refused(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt must be at least 1"):
        next_delay_s(DEFAULT_RETRY_POLICY, attempt)


def test_unknown_backoff_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backoff 'fibonacci'"):
        next_delay_s(RetryPolicy(backoff="fibonacci"), 1)


# -- decide ------------------------------------------------------------------------------


def failed(policy: RetryPolicy = NO_JITTER, **overrides) -> RetryDecision:
    arguments = {
        "attempts_made": 1,
        "age_s": 0.0,
        "retryable": True,
        "status": 503,
        "retry_after_s": None,
        "rand": one,
    }
    return decide(policy, **{**arguments, **overrides})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {},
            RetryDecision(True, 5.0, "attempt 1 failed; retrying in 5.000 s (exponential backoff)"),
        ),
        (
            {"attempts_made": 3},
            RetryDecision(
                True, 20.0, "attempt 3 failed; retrying in 20.000 s (exponential backoff)"
            ),
        ),
        (
            {"retryable": False, "status": 404},
            RetryDecision(False, 0.0, "HTTP 404 is not retryable"),
        ),
        (
            {"retryable": False, "status": None},
            RetryDecision(False, 0.0, "the failure is not retryable"),
        ),
        ({"attempts_made": 25}, RetryDecision(False, 0.0, "max attempts 25 reached")),
        ({"attempts_made": 26}, RetryDecision(False, 0.0, "max attempts 25 reached")),
        ({"age_s": 86_396.0}, RetryDecision(False, 0.0, "max age 86400 s exceeded")),
    ],
)
def test_decisions(overrides: dict[str, Any], expected: RetryDecision) -> None:
    assert failed(**overrides) == expected


def test_not_retryable_wins_over_every_other_rule() -> None:
    decision = failed(retryable=False, status=400, attempts_made=99, age_s=1e9, retry_after_s=5)

    assert decision.reason == "HTTP 400 is not retryable"


def test_a_retry_landing_exactly_on_the_max_age_is_still_made() -> None:
    assert failed(age_s=86_395.0).retry


def test_the_last_allowed_attempt_still_retries() -> None:
    decision = failed(attempts_made=24)

    assert decision.retry
    assert decision.delay_s == 7_200.0


@pytest.mark.parametrize(
    ("status", "retry_after_s", "delay_s", "how"),
    [
        (429, 120.0, 120.0, "Retry-After"),  # longer than the 5 s backoff: used
        (503, 2.0, 5.0, "exponential backoff"),  # shorter: the backoff wins
        (500, 60.0, 60.0, "Retry-After"),  # honoured whatever the status
        (429, 10_000.0, 3_600.0, "Retry-After"),  # capped at max_retry_after_s
        (429, -5.0, 5.0, "exponential backoff"),  # negative: ignored
        (429, float("nan"), 5.0, "exponential backoff"),
        (429, float("inf"), 3_600.0, "Retry-After"),
    ],
)
def test_retry_after(status: int, retry_after_s: float, delay_s: float, how: str) -> None:
    decision = failed(status=status, retry_after_s=retry_after_s)

    assert decision.retry
    assert decision.delay_s == delay_s
    assert decision.reason.endswith(f"({how})")


def test_retry_after_replaces_a_jittered_delay_when_longer() -> None:
    decision = failed(RetryPolicy(), attempts_made=10, retry_after_s=30.0, rand=zero)

    assert decision.delay_s == 30.0


def test_retry_after_cap_of_zero_disables_it() -> None:
    decision = failed(RetryPolicy(jitter=False, max_retry_after_s=0.0), retry_after_s=600.0)

    assert decision.delay_s == 5.0


def test_retry_after_beyond_the_max_age_gives_up() -> None:
    decision = failed(age_s=84_000.0, retry_after_s=3_000.0)

    assert decision == RetryDecision(False, 0.0, "max age 86400 s exceeded")


@pytest.mark.parametrize(("max_age_s", "shown"), [(2.5, "2.5"), (2_592_000.0, "2592000")])
def test_max_age_is_shown_plainly(max_age_s: float, shown: str) -> None:
    decision = failed(RetryPolicy(jitter=False, max_age_s=max_age_s), age_s=max_age_s)

    assert decision.reason == f"max age {shown} s exceeded"


# -- the documented default schedule -----------------------------------------------------


def test_default_policy_values() -> None:
    expected = RetryPolicy(
        max_attempts=25,
        max_age_s=86_400.0,
        backoff="exponential",
        initial_delay_ms=5_000,
        max_delay_ms=7_200_000,
        jitter=True,
        attempt_timeout_ms=5_000,
        max_retry_after_s=3_600.0,
    )

    assert expected == DEFAULT_RETRY_POLICY


def test_default_schedule_unjittered() -> None:
    delays = [
        next_delay_s(DEFAULT_RETRY_POLICY, attempt, rand=one)
        for attempt in range(1, DEFAULT_RETRY_POLICY.max_attempts)
    ]
    print("default delays (s):", delays, "sum:", sum(delays))

    assert delays[:12] == [5, 10, 20, 40, 80, 160, 320, 640, 1_280, 2_560, 5_120, 7_200]
    assert delays[12:] == [7_200.0] * 12
    # 24 retries would take 103,835 s (~28.8 h): longer than the 24 h max age.
    assert sum(delays) == 103_835.0


def simulate(rand, attempt_s: float) -> tuple[int, float, str]:
    """Attempts made and the age when the default policy gives up on an endless failure."""
    age_s = 0.0
    attempts = 0
    while True:
        age_s += attempt_s  # each failing attempt takes this long
        attempts += 1
        decision = decide(
            DEFAULT_RETRY_POLICY,
            attempts_made=attempts,
            age_s=age_s,
            retryable=True,
            status=503,
            retry_after_s=None,
            rand=rand,
        )
        if not decision.retry:
            return attempts, age_s, decision.reason
        age_s += decision.delay_s


@pytest.mark.parametrize("attempt_s", [0.0, 5.0])  # instant failures; every attempt timing out
def test_default_policy_without_jitter_gives_up_on_the_max_age(attempt_s: float) -> None:
    attempts, age_s, reason = simulate(one, attempt_s)
    print(f"gave up after {attempts} attempts at {age_s / 3600:.2f} h: {reason}")

    assert reason == "max age 86400 s exceeded"
    assert attempts == 22
    assert 22 * 3_600 < age_s <= 24 * 3_600


@pytest.mark.parametrize("seed_rand", [half, lambda: 0.99, lambda: 0.01])
def test_default_policy_always_gives_up_within_a_day(seed_rand) -> None:
    attempts, age_s, _ = simulate(seed_rand, 5.0)

    assert attempts <= 25
    assert age_s <= 24 * 3_600 + 5.0
