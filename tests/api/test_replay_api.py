"""``POST /v1/spaces/{space}/events/replay`` (``api/replay.py``): a whole gateway in the
test's event loop, on SQLite files and on memory backends (on NATS JetStream and in every
``--dispatch`` mode for the wake-up), against a real receiver. Waits poll a condition
under a deadline."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from eventgateway.api.deliveries import create_deliveries_app
from eventgateway.api.replay import subscriptions_of
from eventgateway.events.model import CloudEvent
from eventgateway.model.entities import Subscription
from eventgateway.queue.base import Accepted, NewDelivery
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.replay import MAX_REPLAY_EVENTS, ReplayResult, ReplaySkipped
from eventgateway.routing.table import RoutingTable
from eventgateway.settings import Limits
from tests.api.test_deliveries_api import (
    RETRY_MUCH_LATER,
    STRUCTURED,
    TYPE,
    ce,
    emit,
    error,
    eventually,
    get_json,
    subscribe,
    wait_states,
)
from tests.queue.kit import attempt
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.nats_kv import NATS_URL, delete_prefix, require_nats, unique_prefix
from tests.support.receiver import Receiver, Reply

REPLAY = "/v1/spaces/acme/events/replay"
NOTHING_SKIPPED = {"deletedSubscription": 0, "atMostOnce": 0, "filtered": 0}


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


async def delivered_once(gw: InProcess, receiver: Receiver, *event_ids: str) -> str:
    """Function crm subscribed to TYPE on /acme, each event delivered; its subscription."""
    await gw.event_type(TYPE)
    subscription = await subscribe(gw, receiver, "crm")
    await emit(gw, *event_ids)
    await wait_states(gw, [(event_id, "delivered") for event_id in reversed(event_ids)])
    return subscription


async def received(receiver: Receiver, path: str, count: int) -> list[str]:
    """Wait until ``path`` got ``count`` calls; the CloudEvent ids they carried."""
    await receiver.wait_for(count, path)
    return [call.json()["id"] for call in receiver.calls_to(path)]


async def test_replay_by_id_delivers_the_same_event_again_beside_the_old_delivery(
    gw: InProcess, receiver: Receiver
) -> None:
    subscription = await delivered_once(gw, receiver, "e-0", "e-1")

    response = await gw.config.post(REPLAY, json={"ids": ["e-0"]})

    assert (response.status_code, response.json()) == (
        200,
        {"replayed": 1, "events": 1, "skipped": NOTHING_SKIPPED},
    )
    assert await received(receiver, "/acme/crm", 3) == ["e-0", "e-1", "e-0"]
    first, second = receiver.calls_to("/acme/crm")[0], receiver.calls_to("/acme/crm")[2]
    assert first.json() == second.json()
    view = await eventually(
        lambda: get_json(gw, "/v1/spaces/acme/events/e-0"),
        lambda v: v["state"] == "delivered" and len(v["deliveries"]) == 2,
        "the replay of e-0 should be delivered",
    )
    old, new = view["deliveries"]
    assert (old["subscriptionId"], new["subscriptionId"]) == (subscription, subscription)
    assert (old["replayOf"], new["replayOf"]) == (None, old["deliveryId"])
    assert new["deliveryId"] != old["deliveryId"]
    assert [a["outcome"] for a in new["attemptLog"]] == ["delivered"]


async def test_replay_by_window_takes_durations_and_subscription(
    gw: InProcess, receiver: Receiver
) -> None:
    subscription = await delivered_once(gw, receiver, "e-0", "e-1")

    older = await gw.config.post(REPLAY, json={"since": "10m", "until": "5m"})
    numbers = await gw.config.post(REPLAY, json={"since": 1_000_000_000, "until": 1_000_000_001})
    recent = await gw.config.post(REPLAY, json={"since": "10m", "subscriptionId": subscription})

    assert older.json() == {"replayed": 0, "events": 0, "skipped": NOTHING_SKIPPED}
    assert numbers.json() == {"replayed": 0, "events": 0, "skipped": NOTHING_SKIPPED}
    assert recent.json() == {"replayed": 2, "events": 2, "skipped": NOTHING_SKIPPED}
    assert sorted(await received(receiver, "/acme/crm", 4)) == ["e-0", "e-0", "e-1", "e-1"]


async def test_replay_skips_removed_and_at_most_once_subscriptions_and_says_so(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    kept = await subscribe(gw, receiver, "crm")
    removed = await subscribe(gw, receiver, "mail")
    relaxed = await subscribe(gw, receiver, "audit")
    await emit(gw, "e-0")
    await wait_states(gw, [("e-0", "delivered")])
    assert (await gw.config.delete(f"/v1/spaces/acme/subscriptions/{removed}")).status_code == 204
    body = {"type": "async", "eventType": TYPE, "functionId": "audit", "path": "/acme"}
    changed = await gw.config.put(
        f"/v1/spaces/acme/subscriptions/{relaxed}", json={**body, "delivery": "at-most-once"}
    )
    assert changed.status_code == 200, changed.text

    response = await gw.config.post(REPLAY, json={"ids": ["e-0"]})

    assert response.json() == {
        "replayed": 1,
        "events": 1,
        "skipped": {"deletedSubscription": 1, "atMostOnce": 1, "filtered": 0},
    }
    await received(receiver, "/acme/crm", 2)
    view = await get_json(gw, "/v1/spaces/acme/events/e-0")
    assert [d["subscriptionId"] for d in view["deliveries"]][-1] == kept


async def test_replay_skips_subscriptions_whose_filter_now_turns_the_event_away(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    pro = await subscribe(gw, receiver, "crm")
    free = await subscribe(gw, receiver, "mail")
    event = ce("e-0", data={"plan": "pro"})
    assert (await gw.events.post("/acme", json=event, headers=STRUCTURED)).status_code == 202
    await wait_states(gw, [("e-0", "delivered")])
    body = {"type": "async", "eventType": TYPE, "path": "/acme"}
    for subscription, name, plan in [(pro, "crm", "pro"), (free, "mail", "free")]:
        changed = await gw.config.put(
            f"/v1/spaces/acme/subscriptions/{subscription}",
            json={**body, "functionId": name, "filter": {"data": {"plan": [plan]}}},
        )
        assert changed.status_code == 200, changed.text

    response = await gw.config.post(REPLAY, json={"ids": ["e-0"]})

    assert response.json() == {
        "replayed": 1,
        "events": 1,
        "skipped": {"deletedSubscription": 0, "atMostOnce": 0, "filtered": 1},
    }
    await received(receiver, "/acme/crm", 2)
    view = await get_json(gw, "/v1/spaces/acme/events/e-0")
    replays = [d["subscriptionId"] for d in view["deliveries"] if d["replayOf"] is not None]
    assert (len(view["deliveries"]), replays) == (3, [pro])


def _subscription(sub_id: str, **options: Any) -> Subscription:
    return Subscription(
        space="acme",
        subscription_id=sub_id,
        type="async",
        event_type=TYPE,
        function_id=sub_id,
        path="/acme",
        method="POST",
        **options,
    )


def _table(*subscriptions: Subscription) -> RoutingTable:
    return RoutingTable.build(event_types=[], functions=[], subscriptions=subscriptions, cors=[])


async def test_the_deliveries_app_replays_per_the_table_its_getter_returns_at_the_request() -> None:
    queue = MemoryQueue()
    await queue.open()
    event = CloudEvent("1.0", "e-0", "/t", TYPE, data={"plan": "pro"})
    await queue.accept([Accepted(event, [NewDelivery("acme", "s1", "s1")])])
    (first,) = await queue.lease(10)
    await queue.ack(first, attempt())
    table = RoutingTable.empty()
    app = create_deliveries_app(queue, lambda: table)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        before = await client.post(REPLAY, json={"ids": ["e-0"]})
        table = _table(_subscription("s1"))  # the subscription is made meanwhile
        after = await client.post(REPLAY, json={"ids": ["e-0"]})
    await queue.close()

    assert (before.status_code, after.status_code) == (200, 200)
    assert before.json()["skipped"]["deletedSubscription"] == 1
    assert (after.json()["replayed"], after.json()["skipped"]["deletedSubscription"]) == (1, 0)


def test_a_stored_filter_that_no_longer_compiles_lets_no_replay_through() -> None:
    # Routing leaves such a subscription out (it gets no event at accept), so replay does too.
    table = _table(_subscription("bad", filter={"data": {"plan": "pro"}}), _subscription("ok"))
    event = CloudEvent("1.0", "e-0", "/t", TYPE, data={"plan": "pro"})

    bad, ok = (subscriptions_of(table, "acme")(name) for name in ("bad", "ok"))

    assert bad is not None
    assert bad.matches is not None
    assert not bad.matches(event)
    assert ok is not None
    assert ok.matches is None


async def test_ids_that_name_no_event_are_404_naming_them_and_nothing_is_replayed(
    gw: InProcess, receiver: Receiver
) -> None:
    await delivered_once(gw, receiver, "e-0")

    response = await gw.config.post(REPLAY, json={"ids": ["e-0", "gone"]})

    assert response.status_code == 404
    assert response.json() == error(
        "Events not found in space \"acme\": 'gone' (never accepted there, or removed by "
        "retention); nothing was replayed."
    )
    view = await get_json(gw, "/v1/spaces/acme/events/e-0")
    assert len(view["deliveries"]) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'A window needs "since"'),
        ({"until": "1"}, 'A window needs "since"'),
        ({"subscriptionId": "s"}, 'A window needs "since"'),
        ({"ids": ["e"], "since": "1"}, 'by "ids" or by a window ("since", "until"), not both'),
        ({"ids": []}, '"ids" must name at least one event'),
        ({"since": "yesterday"}, "since 'yesterday' is not a time"),
        ({"since": "1", "until": "soon"}, "until 'soon' is not a time"),
        ({"since": -1}, "since -1.0 is before 1970-01-01T00:00:00Z (Unix time 0)"),
        ({"since": 1e30}, "since 1e+30 is too far in the future: the latest is 9999-12-31"),
        ({"since": "1", "until": "10000-01-01T00:00:00Z"}, "is not a time"),
        ({"since": "1969-12-31T23:59:59Z"}, "since '1969-12-31T23:59:59Z' is before 1970"),
        ({"ids": "e-0"}, "at `$.ids`"),
        ({"ids": [1]}, "at `$.ids[0]`"),
        ({"since": True}, "at `$.since`"),
        ({"ids": ["e"], "subscriptionID": "s"}, "unknown field `subscriptionID`"),
        ({"since": "1h", "until": "2h"}, "until is before since"),
        ({"since": "1", "subscriptionId": 5}, "at `$.subscriptionId`"),
        ([], "Replay body is not valid"),
    ],
)
async def test_bad_input_is_400_naming_the_field(gw: InProcess, body: Any, message: str) -> None:
    response = await gw.config.post(REPLAY, content=json.dumps(body))

    assert response.status_code == 400, response.text
    assert message in response.json()["errors"][0]["message"]


async def test_a_number_out_of_range_is_400_naming_the_field(gw: InProcess) -> None:
    response = await gw.config.post(REPLAY, content=b'{"since": 1e400}')

    assert response.status_code == 400, response.text
    assert "Number out of range - at `$.since`" in response.json()["errors"][0]["message"]


async def test_more_ids_than_the_cap_are_400_naming_it(gw: InProcess) -> None:
    ids = [f"e-{n}" for n in range(MAX_REPLAY_EVENTS + 1)]

    response = await gw.config.post(REPLAY, json={"ids": ids})

    assert response.status_code == 400
    assert f"replay at most {MAX_REPLAY_EVENTS} per call" in response.json()["errors"][0]["message"]


async def test_a_replay_past_the_queue_bound_is_429_with_the_counts_and_does_nothing(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    limits = Limits(queue_max_deliveries=2)
    async with in_process_gateway(data_dir=tmp_path / "data", limits=limits) as gw:
        await gw.event_type(TYPE)
        await subscribe(gw, receiver, "crm")
        await subscribe(gw, receiver, "slow", reply=Reply(status=500), retryPolicy=RETRY_MUCH_LATER)
        await emit(gw, "e-0")
        await wait_states(gw, [("e-0", "retrying")])  # crm delivered, slow waits an hour

        response = await gw.config.post(REPLAY, json={"ids": ["e-0"]})

        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        message = response.json()["errors"][0]["message"]
        assert "it would add 2 deliveries" in message
        assert "holding 1 of at most 2 deliveries" in message
        view = await get_json(gw, "/v1/spaces/acme/events/e-0")
        assert len(view["deliveries"]) == 2


def test_the_answer_is_the_replay_result_struct() -> None:
    wire = msgspec.json.decode(msgspec.json.encode(ReplayResult(skipped=ReplaySkipped())))

    assert wire == {"replayed": 0, "events": 0, "skipped": NOTHING_SKIPPED}


@pytest.mark.parametrize(
    ("store", "dispatch"),
    [
        ("sqlite", "inline"),
        ("sqlite", "process"),
        ("sqlite", "worker"),
        ("nats", "inline"),
        ("nats", "worker"),
    ],
)
async def test_a_replay_wakes_the_dispatcher_in_every_dispatch_mode(
    receiver: Receiver, tmp_path: pathlib.Path, store: str, dispatch: str
) -> None:
    settings: dict[str, Any] = {"data_dir": tmp_path / "data", "dispatch": dispatch}
    prefix = None
    if store == "nats":
        require_nats()
        prefix = unique_prefix()
        settings["store_url"] = f"{NATS_URL}?prefix={prefix}"
    try:
        async with in_process_gateway(shutdown_timeout_s=5.0, **settings) as gw:
            if gw.gateway.link is not None:
                await gw.gateway.link.wait_connected(15)
            await delivered_once(gw, receiver, "e-0")

            response = await gw.config.post(REPLAY, json={"ids": ["e-0"]})

            assert response.json()["replayed"] == 1
            assert await received(receiver, "/acme/crm", 2) == ["e-0", "e-0"]
    finally:
        if prefix is not None:
            await delete_prefix(prefix)


async def test_in_worker_mode_the_replays_commit_itself_wakes_the_worker(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    # Straight to the queue: a Configuration API write also re-sends the routing to the
    # worker (RefreshAfterWrite), which would wake it whatever the replay did.
    async with in_process_gateway(
        data_dir=tmp_path / "data", dispatch="worker", shutdown_timeout_s=5.0
    ) as gw:
        gateway = gw.gateway
        assert gateway.link is not None
        await gateway.link.wait_connected(15)
        await delivered_once(gw, receiver, "e-0")

        result = await gateway.queue.replay(
            "acme", ids=["e-0"], subscriptions=subscriptions_of(gateway.routing.table, "acme")
        )

        assert result.replayed == 1
        assert await received(receiver, "/acme/crm", 2) == ["e-0", "e-0"]
