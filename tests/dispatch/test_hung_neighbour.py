"""A hung subscription with thousands of deliveries queued ahead must not hold back a
healthy one queued behind it: a real Dispatcher, a real HttpProvider and real receivers
on 127.0.0.1, over every queue backend.

On JetStream the consumer hands messages out in stream order, so the queue must fetch
past the hung subscription's backlog while the dispatcher excludes it. It used to stop
fetching once 1,000 of them were parked, and the healthy subscription got nothing.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Invoker
from eventgateway.model.entities import Function, RetryPolicy
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from tests.queue.kit import BACKENDS, FakeClock, accepted, queues
from tests.support.receiver import Receiver

DEADLINE_S = 10.0
AHEAD = 3_000  # the hung subscription's deliveries, all queued before the healthy ones
BEHIND = 20
SLOTS = 64  # per subscription


class HungReceiver(Receiver):
    """``/hung`` answers only once ``gate`` is set; every other path at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.hung = 0  # calls to /hung that began

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == "/hung":
            async with self._changed:
                self.hung += 1
                self._changed.notify_all()
            await self.gate.wait()
        return await super()._handle(request)


@pytest.fixture
async def hung_receiver() -> AsyncIterator[HungReceiver]:
    server = HungReceiver()
    await server.start()
    yield server
    server.gate.set()
    await server.stop()


@pytest.fixture
async def invoker() -> AsyncIterator[Invoker]:
    providers = ProviderRegistry({"http": HttpProvider()})
    await providers.open()
    yield Invoker(providers)
    await providers.close()


def routing(receiver: Receiver) -> Any:
    # An attempt outlives the test: the hung subscription's slots stay taken throughout.
    policy = RetryPolicy(attempt_timeout_ms=120_000)

    def target(space: str, subscription_id: str) -> Any:
        url = receiver.url(f"/{subscription_id}")
        return SimpleNamespace(
            authorizer_id=None,
            function=Function(space, subscription_id, type="http", provider={"url": url}),
            subscription=SimpleNamespace(retry_policy=policy),
        )

    return lambda: SimpleNamespace(target=target, runtime_limits=dict)


@pytest.mark.parametrize("backend", list(BACKENDS))
async def test_a_hung_subscription_ahead_does_not_hold_back_a_healthy_one(
    backend: str, tmp_path: pathlib.Path, hung_receiver: HungReceiver, invoker: Invoker
) -> None:
    async with queues(backend, tmp_path, FakeClock()) as make_queue:
        queue = await make_queue(time.time, lease_s=30.0)
        for start in range(0, AHEAD, 500):
            await queue.accept([accepted(f"h{n}", "hung") for n in range(start, start + 500)])
        await queue.accept([accepted(f"f{n}", "fine") for n in range(BEHIND)])
        dispatcher = Dispatcher(queue, invoker, routing(hung_receiver), per_subscription=SLOTS)
        runner = asyncio.create_task(dispatcher.run())
        try:
            await hung_receiver.wait_for(BEHIND, "/fine", timeout_s=DEADLINE_S)
            # ...while every slot of the hung one is still taken, and no more than those.
            assert hung_receiver.hung == SLOTS
            hung_receiver.gate.set()  # it answers again: its whole backlog is delivered
            hung = await hung_receiver.wait_for(AHEAD, "/hung", timeout_s=DEADLINE_S)
            assert len({call.json()["id"] for call in hung}) == AHEAD
        finally:
            dispatcher.stop()
            hung_receiver.gate.set()
            await asyncio.wait_for(runner, DEADLINE_S)
