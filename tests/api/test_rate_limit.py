"""Rate limits on the Events API: per space and per key, on a clock the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from eventgateway.api.emit_guard import (
    DEFAULT_KEY_RATE,
    DEFAULT_SPACE_RATE,
    EmitRateLimiter,
    emit_rate_limiter,
)
from eventgateway.auth.ratelimit import RateLimit
from eventgateway.errors import TooManyRequestsError
from eventgateway.settings import Limits
from tests.api.support_auth import StaticAuthenticator
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver

EVENT = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "user.created"}
STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def limited(
    space: str = "0", key: str = "0", *, private: tuple[str, ...] = ()
) -> AsyncIterator[tuple[InProcess, Clock]]:
    limits = Limits(rate_limit_space=RateLimit.parse(space), rate_limit_key=RateLimit.parse(key))
    clock = Clock()
    async with in_process_gateway(limits=limits) as gw:
        app = gw.gateway.events_app
        assert app.rate_limiter is not None
        app.rate_limiter.clock = clock
        if private:
            auth = StaticAuthenticator(private=private)
            for token in ("k1", "k2"):
                auth.add_key(token, "acme", "emit")
            app.authenticator = auth
        yield gw, clock


async def emit(gw: InProcess, path: str, **headers: str) -> int:
    response = await gw.events.post(path, json=EVENT, headers={**STRUCTURED, **headers})
    return response.status_code


async def test_a_flood_over_the_space_limit_gets_429_with_retry_after():
    async with limited("2/5") as (gw, clock):
        statuses = [await emit(gw, "/acme/x") for _ in range(7)]
        refused = await gw.events.post("/acme/x", json=EVENT, headers=STRUCTURED)
        clock.now += 0.5  # one token back
        after = [await emit(gw, "/acme/x") for _ in range(2)]

    assert statuses == [202] * 5 + [429] * 2
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/json"
    [error] = refused.json()["errors"]
    assert error["message"] == (
        'Rate limit exceeded for space "acme" (2 events/s); retry after 1 s.'
    )
    assert after == [202, 429]


async def test_retry_after_is_whole_seconds_rounded_up():
    async with limited("0.25/1") as (gw, _):
        await emit(gw, "/acme/x")
        refused = await gw.events.post("/acme/x", json=EVENT, headers=STRUCTURED)

    assert refused.headers["retry-after"] == "4"


async def test_spaces_are_limited_independently():
    async with limited("1/2") as (gw, _):
        acme = [await emit(gw, "/acme/x") for _ in range(3)]
        beta = [await emit(gw, "/beta/x") for _ in range(3)]

    assert acme == beta == [202, 202, 429]


async def test_a_batch_counts_as_its_number_of_events():
    batch = [dict(EVENT, id=str(n)) for n in range(3)]
    async with limited("1/5") as (gw, _):
        first = await gw.events.post("/acme/x", json=batch, headers=BATCH)
        second = await gw.events.post("/acme/x", json=batch, headers=BATCH)
        single = await emit(gw, "/acme/x")

    assert (first.status_code, second.status_code, single) == (202, 429, 202)


async def test_refused_events_are_not_queued(receiver: Receiver):
    async with limited("1/2") as (gw, _):
        await gw.http_function("crm", receiver.url("/crm"))
        await gw.event_type("user.created")
        await gw.subscribe(type="async", eventType="user.created", functionId="crm", path="/acme")
        statuses = [
            (
                await gw.events.post("/acme", json=dict(EVENT, id=str(n)), headers=STRUCTURED)
            ).status_code
            for n in range(4)
        ]
        await receiver.wait_for(2, "/crm")
        backlog = gw.gateway.queue.backlog()

    assert statuses == [202, 202, 429, 429]
    assert backlog == 0
    assert len(receiver.calls) == 2


async def test_each_key_has_its_own_budget_within_the_space():
    async with limited("100/100", "1/2", private=("acme",)) as (gw, clock):
        k1 = [await emit(gw, "/acme/x", **{"X-Api-Key": "k1"}) for _ in range(3)]
        k2 = [await emit(gw, "/acme/x", **{"X-Api-Key": "k2"}) for _ in range(2)]
        refused = await gw.events.post(
            "/acme/x", json=EVENT, headers={**STRUCTURED, "X-Api-Key": "k1"}
        )
        clock.now += 1
        later = await emit(gw, "/acme/x", **{"X-Api-Key": "k1"})

    assert k1 == [202, 202, 429]
    assert k2 == [202, 202]
    assert 'API key "key-k1"' in refused.json()["errors"][0]["message"]
    assert later == 202


async def test_the_space_limit_caps_all_keys_together():
    async with limited("1/3", "100/100", private=("acme",)) as (gw, _):
        statuses = [
            await emit(gw, "/acme/x", **{"X-Api-Key": token}) for token in ("k1", "k2", "k1", "k2")
        ]

    assert statuses == [202, 202, 202, 429]


async def test_requests_without_a_valid_key_spend_nothing():
    async with limited("1/2", "1/2", private=("acme",)) as (gw, _):
        unauthorized = [await emit(gw, "/acme/x", **{"X-Api-Key": "bad"}) for _ in range(5)]
        accepted = [await emit(gw, "/acme/x", **{"X-Api-Key": "k1"}) for _ in range(2)]

    assert unauthorized == [401] * 5
    assert accepted == [202, 202]


async def test_zero_means_unlimited_and_open_mode_has_no_default_limits():
    async with in_process_gateway() as gw:
        assert gw.gateway.events_app.rate_limiter is None
        statuses = {await emit(gw, "/acme/x") for _ in range(50)}

    assert statuses == {202}


# -- the limiter on its own -----------------------------------------------------------------


def test_auth_mode_defaults_to_1000_per_space_and_per_key():
    limiter = emit_rate_limiter(Limits(), auth=True)

    assert limiter is not None
    assert limiter.spaces is not None
    assert limiter.spaces.limit == DEFAULT_SPACE_RATE
    assert limiter.keys is not None
    assert limiter.keys.limit == DEFAULT_KEY_RATE
    assert RateLimit(1000.0, 2000) == DEFAULT_SPACE_RATE


@pytest.mark.parametrize(
    ("limits", "auth", "space", "key"),
    [
        (Limits(), False, None, None),
        (Limits(rate_limit_space=RateLimit(5.0, 5)), False, RateLimit(5.0, 5), None),
        (
            Limits(rate_limit_space=RateLimit.UNLIMITED, rate_limit_key=RateLimit.UNLIMITED),
            True,
            None,
            None,
        ),
        (Limits(rate_limit_key=RateLimit.UNLIMITED), True, DEFAULT_SPACE_RATE, None),
    ],
)
def test_explicit_limits_apply_in_any_mode_and_zero_turns_them_off(limits, auth, space, key):
    limiter = emit_rate_limiter(limits, auth=auth)

    if space is None and key is None:
        assert limiter is None
        return
    assert limiter is not None
    assert (limiter.spaces.limit if limiter.spaces is not None else None) == space
    assert (limiter.keys.limit if limiter.keys is not None else None) == key


def test_the_message_names_the_key_when_only_the_key_refuses():
    clock = Clock()
    limiter = EmitRateLimiter(RateLimit(100.0, 100), RateLimit(1.0, 1), clock=clock)
    limiter.check("acme", "k1", 1)

    with pytest.raises(TooManyRequestsError) as caught:
        limiter.check("acme", "k1", 1)

    assert caught.value.retry_after_s == 1
    assert caught.value.message == (
        'Rate limit exceeded for API key "k1" (1 events/s); retry after 1 s.'
    )
    limiter.check("acme", None, 1)  # no key: only the space counts


def test_the_limiter_keeps_a_bounded_number_of_buckets():
    limiter = EmitRateLimiter(RateLimit(1.0, 1), RateLimit(1.0, 1), max_buckets=50)
    for index in range(500):
        limiter.check(f"space-{index}", f"key-{index}", 1)

    assert limiter.spaces is not None
    assert len(limiter.spaces) <= 50
    assert limiter.keys is not None
    assert len(limiter.keys) <= 50


def test_huge_path_segments_do_not_make_huge_bucket_keys():
    clock = Clock()
    limiter = EmitRateLimiter(RateLimit(1.0, 1), RateLimit.UNLIMITED, clock=clock)
    limiter.check("x" * 50_000, None, 1)

    with pytest.raises(TooManyRequestsError) as caught:
        limiter.check("x" * 60_000, None, 1)  # same 256-character prefix: same bucket

    assert len(caught.value.message) < 400
