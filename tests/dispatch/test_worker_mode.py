"""``--dispatch worker`` end to end: the delivery worker process leases, calls and settles
the SQLite queue; the gateway (in this test's event loop) only accepts, and feeds it routing,
wake-ups, local-runtime calls (BackCall) and receives its metrics (Stats).

Real processes and sockets: the worker is the real ``python -m eventgateway.call_worker``
child, the functions a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from eventgateway.dispatch.link import DispatchLink
from eventgateway.queue.jetstream import JetStreamQueue
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.nats_kv import NATS_URL, delete_prefix, require_nats, unique_prefix
from tests.support.receiver import Received, Receiver, Reply

STRUCTURED = {"content-type": "application/cloudevents+json"}
FAST_RETRY = {"initialDelayMs": 50, "maxDelayMs": 100, "jitter": False, "maxAttempts": 5}


@contextlib.asynccontextmanager
async def worker_gateway(data_dir: pathlib.Path, **settings: Any) -> AsyncIterator[InProcess]:
    async with in_process_gateway(
        data_dir=data_dir,
        dispatch="worker",
        shutdown_timeout_s=5.0,
        log_level="warning",
        **settings,
    ) as gw:
        await asyncio.wait_for(link(gw).connected.wait(), 15)
        yield gw


@pytest.fixture
async def gw(receiver: Receiver, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    # Depends on `receiver`: the gateway stops (draining the worker) before the receiver does.
    async with worker_gateway(tmp_path / "data") as gateway:
        yield gateway


def link(gw: InProcess) -> DispatchLink:
    assert gw.gateway.link is not None, "the gateway is not linked to a dispatching worker"
    return gw.gateway.link


def ce(event_id: str, type_: str = "user.created") -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "/t", "type": type_}


async def emit(gw: InProcess, event_id: str, type_: str = "user.created") -> None:
    response = await gw.events.post("/acme", json=ce(event_id, type_), headers=STRUCTURED)
    assert response.status_code == 202, response.text


async def subscribe_http(
    gw: InProcess, receiver: Receiver, name: str, type_: str = "user.created", **options: Any
) -> None:
    await gw.http_function(name, receiver.url(f"/{name}"))
    await gw.subscribe(type="async", eventType=type_, functionId=name, path="/acme", **options)


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 15.0) -> Any:
    """``probe()``'s first truthy value; fails after ``timeout_s`` (another process acts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.02)  # the worker writes SQLite / sends Stats: no event here


async def settled(gw: InProcess, event_id: str) -> dict[str, Any]:
    """The event's view once all its deliveries are settled (written by the worker)."""

    async def probe() -> dict[str, Any] | None:
        response = await gw.config.get(f"/v1/spaces/acme/events/{event_id}")
        if response.status_code != 200:
            return None
        view: dict[str, Any] = response.json()
        return view if view["state"] in ("delivered", "dead") else None

    return await until(probe, f"event {event_id} settled")  # type: ignore[no-any-return]


def outcomes(view: dict[str, Any]) -> list[str]:
    return [a["outcome"] for d in view["deliveries"] for a in d["attemptLog"]]


async def metric_at_least(gw: InProcess, name: str, labels: str, value: float) -> None:
    pattern = re.compile(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", re.M)

    async def probe() -> bool:
        match = pattern.search((await gw.config.get("/v1/metrics")).text)
        return match is not None and float(match.group(1)) >= value

    await until(probe, f"{name}{{{labels}}} >= {value}")


# -- 1. the worker delivers; the gateway's metrics count it -----------------------------------


async def test_the_worker_process_delivers_and_the_gateway_counts_it(
    receiver: Receiver, gw: InProcess
) -> None:
    gateway = gw.gateway
    # Only the at-most-once queue is dispatched in this process; the SQLite one is not.
    assert [d._queue for d in gateway.dispatchers] == [gateway.fast_queue]
    assert gateway.worker is not None
    assert gateway.worker.pid not in (None, os.getpid())
    await gw.event_type("user.created")
    await subscribe_http(gw, receiver, "crm")
    await emit(gw, "e-1")

    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["id"] == "e-1"
    view = await settled(gw, "e-1")
    assert view["state"] == "delivered"
    assert outcomes(view) == ["delivered"]
    assert view["deliveries"][0]["attemptLog"][0]["status"] == 200
    # Counted by the worker's dispatcher, forwarded to the gateway as Stats.
    await metric_at_least(gw, "eventgateway_delivery_attempts_total", 'outcome="delivered"', 1)
    await metric_at_least(
        gw, "eventgateway_events_processed_total", 'space="acme",type="custom"', 1
    )
    assert len(receiver.calls_to("/crm")) == 1


# -- 2. a subscription created just before the emit is known to the worker --------------------


async def test_subscriptions_created_right_before_an_emit_are_delivered(
    receiver: Receiver, gw: InProcess
) -> None:
    await gw.event_type("user.created")
    for n in range(5):
        await subscribe_http(gw, receiver, f"f{n}")  # no wait between the 201 and the emit
        await emit(gw, f"e-{n}")
    await receiver.wait_until(lambda: len(receiver.calls) >= 15)  # 5 + 4 + 3 + 2 + 1
    for n in range(5):
        view = await settled(gw, f"e-{n}")
        assert outcomes(view) == ["delivered"] * (n + 1), view  # none "skipped"
    for n in range(5):
        assert sorted(c.json()["id"] for c in receiver.calls_to(f"/f{n}")) == [
            f"e-{m}" for m in range(n, 5)
        ]


async def test_a_worker_missing_a_subscription_asks_for_the_routing_again(
    receiver: Receiver, gw: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    await gw.event_type("user.created")
    # The gateway routes the new subscription but does not push its table to the worker:
    # only the worker's Resync (on a delivery naming an unknown subscription) can fetch it.
    monkeypatch.setattr(gw.gateway.routing, "_on_table", None)
    publish = link(gw).publish
    resyncs: list[None] = []

    def counting_publish() -> None:  # now called only on the worker's Resync
        resyncs.append(None)
        publish()

    monkeypatch.setattr(link(gw), "publish", counting_publish)
    await subscribe_http(gw, receiver, "late")
    await emit(gw, "e-1")

    [call] = await receiver.wait_for(1, "/late")
    assert call.json()["id"] == "e-1"
    assert outcomes(await settled(gw, "e-1")) == ["delivered"]
    assert resyncs, "delivered without the worker asking for the routing again"


# -- 3. retries -------------------------------------------------------------------------------


async def test_a_failed_attempt_is_retried_by_the_worker(receiver: Receiver, gw: InProcess) -> None:
    answers = iter([Reply(status=500)])
    receiver.reply("/flaky", lambda _: next(answers, Reply(status=200)))
    await gw.event_type("user.created")
    await subscribe_http(gw, receiver, "flaky", retryPolicy=FAST_RETRY)
    await emit(gw, "e-1")

    await receiver.wait_for(2, "/flaky")
    view = await settled(gw, "e-1")
    assert view["state"] == "delivered"
    [delivery] = view["deliveries"]
    assert [a["status"] for a in delivery["attemptLog"]] == [500, 200]
    assert outcomes(view) == ["failed", "delivered"]
    await metric_at_least(gw, "eventgateway_delivery_retries_total", 'space="acme"', 1)
    await metric_at_least(gw, "eventgateway_delivery_attempts_total", 'outcome="failed"', 1)
    assert len(receiver.calls_to("/flaky")) == 2


# -- 4. a local-runtime function: called back in the gateway process --------------------------

HANDLER = """
import os

def handler(event, context):
    print(f"event={event['id']} parent={os.getppid()}")
    return {"ok": True}
"""


async def test_a_python_function_runs_in_the_gateway_process_through_a_back_call(
    receiver: Receiver, gw: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    back_calls: list[str] = []
    answer = link(gw)._answer

    async def counting(request: Any) -> None:
        back_calls.append(request.function_id)
        await answer(request)

    monkeypatch.setattr(link(gw), "_answer", counting)
    bundle_id = await gw.upload_bundle({"handler.py": HANDLER})
    await gw.create(
        "functions",
        {
            "functionId": "py",
            "type": "python",
            "provider": {"bundle": bundle_id, "handler": "handler.handler"},
        },
    )
    await gw.event_type("user.created")
    await gw.subscribe(type="async", eventType="user.created", functionId="py", path="/acme")
    await emit(gw, "e-1")

    view = await settled(gw, "e-1")
    assert outcomes(view) == ["delivered"], view
    assert back_calls == ["py"]

    async def logged() -> bool:
        lines = (await gw.config.get("/v1/spaces/acme/functions/py/logs")).json()["logs"]
        return any(line["message"] == f"event=e-1 parent={os.getpid()}" for line in lines)

    await until(logged, "the handler's log line")  # the runtime is this process's child


# -- 5. a killed worker ---------------------------------------------------------------------


async def test_a_killed_worker_is_restarted_relinked_and_loses_nothing(
    receiver: Receiver, gw: InProcess
) -> None:
    worker = gw.gateway.worker
    assert worker is not None
    assert worker.pid is not None
    await gw.event_type("user.created")
    await subscribe_http(gw, receiver, "before")
    await emit(gw, "e-0")
    await receiver.wait_for(1, "/before")
    await settled(gw, "e-0")

    killed = worker.pid
    os.kill(killed, signal.SIGKILL)

    async def unlinked() -> bool:
        return not link(gw).connected.is_set()

    await until(unlinked, "the link noticed the dead worker")
    # Accepted while no worker runs; a subscription the new worker never heard of.
    await subscribe_http(gw, receiver, "after")
    for n in range(1, 6):
        await emit(gw, f"e-{n}")

    expected = {f"e-{n}" for n in range(6)}
    await receiver.wait_until(
        lambda: {c.json()["id"] for c in receiver.calls_to("/before")} >= expected
    )
    await receiver.wait_until(
        lambda: {c.json()["id"] for c in receiver.calls_to("/after")} >= expected - {"e-0"}
    )
    await asyncio.wait_for(link(gw).connected.wait(), 5)
    assert worker.restarts == 1
    assert worker.pid not in (None, killed)
    for n in range(1, 6):
        assert outcomes(await settled(gw, f"e-{n}")) == ["delivered", "delivered"]
    assert len(receiver.calls_to("/before")) == 6  # e-0 was acked before the kill: once
    await metric_at_least(gw, "eventgateway_delivery_attempts_total", 'outcome="delivered"', 11)


async def test_a_delivery_in_flight_when_the_worker_dies_is_made_again_at_once(
    receiver: Receiver, gw: InProcess
) -> None:
    arrived = asyncio.Event()
    calls = 0

    def first_hangs(received: Received) -> Reply:
        nonlocal calls
        calls += 1
        arrived.set()  # the receiver records a call only once it answers
        return Reply(status=200, delay_s=6.0 if calls == 1 else 0.0)

    receiver.reply("/hang", first_hangs)
    worker = gw.gateway.worker
    assert worker is not None
    assert worker.pid is not None
    await gw.event_type("user.created")
    await subscribe_http(gw, receiver, "hang")
    await emit(gw, "e-1")
    await asyncio.wait_for(arrived.wait(), 10)  # the first attempt is in flight
    os.kill(worker.pid, signal.SIGKILL)

    # The restarted worker hands the dead one's lease back instead of waiting out its
    # 60 s expiry: the call is made again, answered at once, before the hung one.
    [call] = await receiver.wait_for(1, "/hang", timeout_s=5.5)
    assert call.json()["id"] == "e-1"
    assert calls == 2
    view = await settled(gw, "e-1")
    assert outcomes(view) == ["delivered"]  # the killed attempt logged nothing


# -- 6. graceful stop --------------------------------------------------------------------------


async def test_a_graceful_stop_finishes_and_acks_the_delivery_in_flight(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    arrived = asyncio.Event()

    def slow(_: Received) -> Reply:
        arrived.set()
        return Reply(delay_s=1.0)

    receiver.reply("/slow", slow)
    data_dir = tmp_path / "data"
    async with worker_gateway(data_dir) as gw:
        await gw.event_type("user.created")
        await gw.event_type("marker")
        await subscribe_http(gw, receiver, "slow")
        await subscribe_http(gw, receiver, "mark", type_="marker")
        await emit(gw, "e-1")
        await asyncio.wait_for(arrived.wait(), 15)  # the worker's call is in flight
        stopping = time.monotonic()
    stop_s = time.monotonic() - stopping
    # Drained: the gateway waited for the worker's answer, not for its 5 s timeout.
    assert stop_s < 4.5, stop_s
    assert len(receiver.calls_to("/slow")) == 1

    async with worker_gateway(data_dir) as again:
        view = await settled(again, "e-1")
        await emit(again, "m-1", "marker")
        await receiver.wait_for(1, "/mark")  # the new worker is dispatching
    assert view["state"] == "delivered"
    assert outcomes(view) == ["delivered"]
    assert len(receiver.calls_to("/slow")) == 1


# -- 8. at-most-once events live in the worker's memory ------------------------------------


async def test_at_most_once_events_are_queued_and_delivered_by_the_worker(
    receiver: Receiver, gw: InProcess
) -> None:
    gateway = gw.gateway
    kept_here: list[object] = []

    async def accept_here(items: Any) -> list[bool]:
        kept_here.append(items)
        return [False] * len(items)

    # While linked, the gateway's own at-most-once buffer is not used.
    gateway.fast_queue.accept = accept_here  # type: ignore[method-assign]
    await gw.event_type("user.created")
    await subscribe_http(gw, receiver, "fast", delivery="at-most-once")
    for n in range(3):
        await emit(gw, f"f-{n}")
    calls = await receiver.wait_for(3, "/fast")
    assert sorted(call.json()["id"] for call in calls) == ["f-0", "f-1", "f-2"]
    assert kept_here == []  # they went over the link to the worker's queue
    await metric_at_least(
        gw, "eventgateway_events_processed_total", 'space="acme",type="custom"', 3
    )


# -- 9. on NATS the worker leases from JetStream itself ---------------------------------------


async def test_on_nats_the_worker_leases_calls_and_settles_from_jetstream(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    require_nats()
    prefix = unique_prefix()
    answers = iter([Reply(status=500)])
    receiver.reply("/flaky", lambda _: next(answers, Reply(status=200)))
    try:
        async with worker_gateway(tmp_path / "data", store_url=f"{NATS_URL}?prefix={prefix}") as gw:
            gateway = gw.gateway
            assert [d._queue for d in gateway.dispatchers] == [gateway.fast_queue]
            await gw.event_type("user.created")
            await subscribe_http(gw, receiver, "flaky", retryPolicy=FAST_RETRY)
            await emit(gw, "e-1")

            await receiver.wait_for(2, "/flaky")
            view = await settled(gw, "e-1")
            assert outcomes(view) == ["failed", "delivered"]
            # The gateway's own JetStream client never pulled: the worker's did.
            assert isinstance(gateway.queue, JetStreamQueue)
            assert gateway.queue._fetcher is None
            await metric_at_least(gw, "eventgateway_delivery_retries_total", 'space="acme"', 1)
            await metric_at_least(
                gw, "eventgateway_delivery_attempts_total", 'outcome="delivered"', 1
            )
        assert len(receiver.calls_to("/flaky")) == 2
    finally:
        await delete_prefix(prefix)
