"""Fakes shared by the dispatcher tests that drive a real ``Dispatcher`` over a queue:
a routing table whose every subscription has one retry policy, and hooks that record
what each settle left."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from eventgateway.dispatch.dispatcher import DispatchHooks
from eventgateway.model.entities import RetryPolicy
from eventgateway.model.runtime_provider import RuntimeLimit
from eventgateway.queue.base import Delivery


def policy_table(policy: RetryPolicy) -> Callable[[], Any]:
    """A routing-table getter: every subscription has ``policy``, and a function named
    as the subscription."""

    class Table:
        def target(self, space: str, subscription_id: str) -> Any:
            return SimpleNamespace(
                authorizer_id=None,
                function=SimpleNamespace(function_id=subscription_id),
                subscription=SimpleNamespace(retry_policy=policy),
            )

        def runtime_limits(self) -> dict[str, RuntimeLimit]:
            return {}

    return Table


class Settled(DispatchHooks):
    """Records the state each settle left (``retrying``, ``delivered``, ``dead``…)."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.changed = asyncio.Event()

    def after_settle(self, delivery: Delivery, state: str) -> None:
        self.states.append(state)
        self.changed.set()

    async def until_final(self, deadline_s: float) -> None:
        """Wait until a delivery was delivered or died; fail after ``deadline_s``."""

        async def wait() -> None:
            while not {"delivered", "dead"} & set(self.states):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), deadline_s)


async def run_until_final(dispatcher: Any, hooks: Settled, deadline_s: float) -> None:
    """Run ``dispatcher`` until a delivery was delivered or died, then stop it."""
    runner = asyncio.create_task(dispatcher.run())
    try:
        await hooks.until_final(deadline_s)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(runner, deadline_s)


async def run_until(dispatcher: Any, happened: asyncio.Event, deadline_s: float) -> None:
    """Run ``dispatcher`` until ``happened`` is set, then stop it."""
    runner = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.wait_for(happened.wait(), deadline_s)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(runner, deadline_s)
