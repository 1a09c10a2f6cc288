"""At-least-once delivery end to end, in one event loop: retries, dead letters, redrive,
isolation of slow subscribers, ordering, de-duplication, the delivery log, signing.

Each test runs on SQLite files (the default backend) and on memory backends.
"""

from __future__ import annotations

import asyncio
import collections
import pathlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.sdk import WebhookVerifier, generate_secret
from eventgateway.settings import Limits
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Received, Receiver, Reply

STRUCTURED = {"content-type": "application/cloudevents+json"}
FAST_RETRY = {"initialDelayMs": 20, "maxDelayMs": 50, "jitter": False, "maxAttempts": 5}


def ce(n: int | str, *, type_: str = "user.created", **extra: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e-{n}", "source": "/t", "type": type_, **extra}


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


async def subscribe(gw: InProcess, receiver: Receiver, name: str, **options: Any) -> str:
    await gw.http_function(name, receiver.url(f"/{name}"))
    sub = await gw.subscribe(
        type="async", eventType="user.created", functionId=name, path="/acme", **options
    )
    return str(sub["subscriptionId"])


async def emit(gw: InProcess, event: dict[str, Any], headers: dict[str, str] | None = None):
    response = await gw.events.post("/acme", json=event, headers={**STRUCTURED, **(headers or {})})
    assert response.status_code == 202, response.text
    return response


def failing_first(times: int, status: int = 503):
    seen: collections.Counter[str] = collections.Counter()

    def respond(call: Received) -> Reply:
        event_id = call.json()["id"]
        seen[event_id] += 1
        return Reply(status=status) if seen[event_id] <= times else Reply(status=200)

    return respond


async def test_receiver_down_for_a_while_then_up_gets_everything(gw, receiver):
    await gw.event_type("user.created")
    receiver.reply("/crm", failing_first(2))
    await subscribe(gw, receiver, "crm", retryPolicy=FAST_RETRY)
    for n in range(10):
        await emit(gw, ce(n))
    await receiver.wait_for(30, "/crm")
    ok = [c.json()["id"] for c in receiver.calls_to("/crm")]
    assert sorted(set(ok)) == sorted(f"e-{n}" for n in range(10))
    view = (await gw.config.get("/v1/spaces/acme/events/e-3")).json()
    [delivery] = view["deliveries"]
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attemptLog"]] == [503, 503, 200]
    assert view["state"] == "delivered"


async def test_always_failing_receiver_dead_letters_then_redrive_delivers_once(gw, receiver):
    await gw.event_type("user.created")
    receiver.reply("/crm", Reply(status=500, body=b"database down"))
    sub_id = await subscribe(gw, receiver, "crm", retryPolicy={**FAST_RETRY, "maxAttempts": 3})
    for n in range(3):
        await emit(gw, ce(n))
    await receiver.wait_for(9, "/crm")

    async def dead_letters() -> list[dict[str, Any]]:
        listed = await gw.config.get("/v1/spaces/acme/deadletters")
        return list(listed.json()["deadLetters"])

    deadline = time.monotonic() + 10
    while len(await dead_letters()) < 3:  # settling is asynchronous to the receiver's reply
        assert time.monotonic() < deadline, "dead letters did not appear"
        await asyncio.sleep(0.02)
    letters = await dead_letters()
    assert {letter["eventId"] for letter in letters} == {"e-0", "e-1", "e-2"}
    assert all(letter["attempts"] == 3 for letter in letters)
    assert all(letter["lastStatus"] == 500 for letter in letters)
    assert all("database down" in letter["responseExcerpt"] for letter in letters)
    assert all("max attempts" in letter["reason"] for letter in letters)
    assert all(letter["subscriptionId"] == sub_id for letter in letters)

    receiver.reply("/crm", Reply(status=200))
    redriven = await gw.config.post(
        "/v1/spaces/acme/deadletters/redrive", json={"subscriptionId": sub_id}
    )
    assert redriven.json() == {"redriven": 3}
    await receiver.wait_for(12, "/crm")
    assert await dead_letters() == []
    delivered_after = [c.json()["id"] for c in receiver.calls[9:]]
    assert sorted(delivered_after) == ["e-0", "e-1", "e-2"]


async def test_client_error_is_dead_lettered_without_retry(gw, receiver):
    await gw.event_type("user.created")
    receiver.reply("/crm", Reply(status=404, body=b"no such user"))
    await subscribe(gw, receiver, "crm", retryPolicy=FAST_RETRY)
    await emit(gw, ce(1))
    await receiver.wait_for(1, "/crm")
    deadline = time.monotonic() + 5
    while (await gw.config.get("/v1/spaces/acme/events/e-1")).json()["state"] != "dead":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    [letter] = (await gw.config.get("/v1/spaces/acme/deadletters")).json()["deadLetters"]
    assert letter["attempts"] == 1
    assert letter["lastStatus"] == 404
    assert "not retryable" in letter["reason"]
    assert len(receiver.calls_to("/crm")) == 1


async def test_hung_subscriber_does_not_delay_a_healthy_one(gw, receiver):
    await gw.event_type("user.created")
    receiver.reply("/hung", Reply(delay_s=3))
    await subscribe(gw, receiver, "hung")
    await subscribe(gw, receiver, "healthy")
    started = time.monotonic()
    for n in range(60):
        await emit(gw, ce(n))
    await receiver.wait_for(60, "/healthy", timeout_s=2.5)
    healthy_s = time.monotonic() - started
    assert receiver.calls_to("/hung") == []  # still hanging, yet the healthy one is done
    assert healthy_s < 2.5


async def test_ordered_subscription_keeps_order_per_key_and_a_failure_holds_only_its_key(
    gw, receiver
):
    await gw.event_type("user.created")
    receiver.reply("/crm", failing_first(2))
    await subscribe(gw, receiver, "crm", ordered=True, retryPolicy=FAST_RETRY)
    for n in range(5):
        for key in ("a", "b"):
            await emit(gw, ce(f"{key}{n}", partitionkey=key))
    await receiver.wait_for(30, "/crm")
    successes = [
        c.json()["id"] for c in receiver.calls_to("/crm") if c.json()["id"]
    ]  # every call; keep the order of first success per id
    first_success: dict[str, int] = {}
    attempts: collections.Counter[str] = collections.Counter()
    for index, event_id in enumerate(successes):
        attempts[event_id] += 1
        if attempts[event_id] == 3:
            first_success[event_id] = index
    for key in ("a", "b"):
        ids = [f"e-{key}{n}" for n in range(5)]
        assert sorted(ids, key=first_success.__getitem__) == ids


async def test_duplicate_source_and_id_is_accepted_but_not_delivered_again(gw, receiver):
    await gw.event_type("user.created")
    await subscribe(gw, receiver, "crm")
    first = await emit(gw, ce(1))
    second = await emit(gw, ce(1))
    other_source = await emit(gw, {**ce(1), "source": "/elsewhere"})
    await receiver.wait_for(2, "/crm")
    assert "x-eventgateway-duplicate" not in first.headers
    assert second.headers["x-eventgateway-duplicate"] == "true"
    assert "x-eventgateway-duplicate" not in other_source.headers
    events = (await gw.config.get("/v1/spaces/acme/events")).json()["events"]
    assert len(events) == 2


async def test_a_batch_is_marked_duplicate_only_when_every_event_was_one(gw, receiver):
    await gw.event_type("user.created")
    await subscribe(gw, receiver, "crm")
    await emit(gw, ce("old"))
    batch = {"content-type": "application/cloudevents-batch+json"}

    mixed = await gw.events.post("/acme", json=[ce("new"), ce("old")], headers=batch)
    repeated = await gw.events.post("/acme", json=[ce("new"), ce("old")], headers=batch)

    assert mixed.status_code == repeated.status_code == 202
    assert "x-eventgateway-duplicate" not in mixed.headers  # "new" was accepted
    assert repeated.headers["x-eventgateway-duplicate"] == "true"
    await receiver.wait_for(2, "/crm")
    assert sorted(c.json()["id"] for c in receiver.calls_to("/crm")) == ["e-new", "e-old"]


async def test_full_queue_answers_429_with_retry_after(tmp_path, receiver):
    limits = Limits(queue_max_deliveries=3, dispatch_concurrency=1)
    async with in_process_gateway(
        data_dir=tmp_path / "d", limits=limits, shutdown_timeout_s=0.5
    ) as gw:
        await gw.event_type("user.created")
        receiver.reply("/crm", Reply(delay_s=2))
        await subscribe(gw, receiver, "crm")
        statuses = []
        for n in range(6):
            response = await gw.events.post("/acme", json=ce(n), headers=STRUCTURED)
            statuses.append(response.status_code)
        assert statuses[:3] == [202, 202, 202]
        assert statuses[-1] == 429
        assert response.headers["retry-after"] == "1"
        assert "queue" in response.json()["errors"][0]["message"].lower()


async def test_delivery_log_lists_events_with_state_and_hides_other_spaces(gw, receiver):
    await gw.event_type("user.created")
    await subscribe(gw, receiver, "crm")
    await emit(gw, ce(1))
    await receiver.wait_for(1, "/crm")
    listed = (await gw.config.get("/v1/spaces/acme/events")).json()["events"]
    assert [(e["id"], e["deliveries"]) for e in listed] == [("e-1", 1)]
    assert (await gw.config.get("/v1/spaces/other/events/e-1")).status_code == 404
    assert (await gw.config.get("/v1/spaces/other/events")).json() == {"events": []}
    bad = await gw.config.get("/v1/spaces/acme/events?state=lost")
    assert bad.status_code == 400
    assert "state" in bad.json()["errors"][0]["message"]


async def test_signed_deliveries_verify_with_the_sdk_verifier(gw, receiver):
    secret = generate_secret()
    await gw.event_type("user.created")
    await gw.create(
        "functions",
        {
            "functionId": "signed",
            "type": "http",
            "provider": {"url": receiver.url("/signed")},
            "signingSecrets": [secret],
        },
    )
    await gw.subscribe(type="async", eventType="user.created", functionId="signed", path="/acme")
    await emit(gw, ce(1))
    [call] = await receiver.wait_for(1, "/signed")
    WebhookVerifier(secret).verify(call.body, call.headers)
    assert call.headers["webhook-id"]


async def test_binary_content_mode_sends_ce_headers(gw, receiver):
    await gw.event_type("user.created")
    await gw.create(
        "functions",
        {
            "functionId": "bin",
            "type": "http",
            "provider": {"url": receiver.url("/bin")},
            "contentMode": "binary",
        },
    )
    await gw.subscribe(type="async", eventType="user.created", functionId="bin", path="/acme")
    await emit(gw, ce(1, datacontenttype="application/json", data={"a": 1}))
    [call] = await receiver.wait_for(1, "/bin")
    assert call.headers["ce-id"] == "e-1"
    assert call.headers["ce-type"] == "user.created"
    assert call.headers["Content-Type"] == "application/json"
    assert call.json() == {"a": 1}


async def test_at_most_once_subscription_is_not_retried(gw, receiver):
    await gw.event_type("user.created")
    receiver.reply("/fast", Reply(status=503))
    await subscribe(gw, receiver, "fast", delivery="at-most-once")
    await emit(gw, ce(1))
    await receiver.wait_for(1, "/fast")
    metrics = (await gw.config.get("/v1/metrics")).text
    deadline = time.monotonic() + 5
    while 'eventgateway_deliveries_given_up_total{space="acme"} 1.0' not in metrics:
        assert time.monotonic() < deadline, metrics
        await asyncio.sleep(0.02)
        metrics = (await gw.config.get("/v1/metrics")).text
    assert len(receiver.calls_to("/fast")) == 1
    assert "eventgateway_events_dropped_total{" not in metrics  # only a full buffer drops


async def test_graceful_stop_lets_an_in_flight_delivery_finish_and_records_it(
    tmp_path: pathlib.Path, receiver: Receiver
):
    receiver.reply("/slow", Reply(delay_s=0.5))
    data_dir = tmp_path / "data"
    async with in_process_gateway(data_dir=data_dir, shutdown_timeout_s=5) as gw:
        await gw.event_type("user.created")
        await subscribe(gw, receiver, "slow")
        await emit(gw, ce(1))
        deadline = time.monotonic() + 5
        while gw.gateway.dispatchers[0].in_flight == 0:  # leased, not yet answered
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
    # the context manager stopped the gateway while the delivery was in flight
    assert len(receiver.calls_to("/slow")) == 1
    async with in_process_gateway(data_dir=data_dir) as again:
        view = (await again.config.get("/v1/spaces/acme/events/e-1")).json()
    assert view["state"] == "delivered"
    assert len(receiver.calls_to("/slow")) == 1
