"""A call the gateway itself cut off is made again without counting an attempt (QA: with
``maxAttempts: 1`` such deliveries were dead-lettered after a ``kill -9`` of ``eg serve``)."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.dispatch import dispatcher as dispatcher_module
from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Outcome
from eventgateway.errors import ProviderError
from eventgateway.events.model import CloudEvent
from eventgateway.model.entities import RetryPolicy
from eventgateway.providers.base import Reply
from eventgateway.queue.base import Accepted, NewDelivery
from eventgateway.queue.memory import MemoryQueue
from tests.dispatch.kit import Settled, policy_table, run_until_final

DEADLINE_S = 5.0


class InterruptedOnce:
    """The first call fails as a gateway gone mid-call does; the next one succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.calls += 1
        if self.calls == 1:
            error = ProviderError("the gateway went away during the call", interrupted=True)
            return Outcome(ok=False, reply=None, error=error.message, retryable=True, failure=error)
        return Outcome(ok=True, reply=Reply(status=200, body=b""))


async def test_an_interrupted_call_is_made_again_and_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher_module, "_INTERRUPTED_AGAIN_S", 0.0)
    queue = MemoryQueue()
    invoker = InterruptedOnce()
    hooks = Settled()
    table = policy_table(RetryPolicy(max_attempts=1))
    dispatcher = Dispatcher(queue, invoker, table, hooks=hooks)  # type: ignore[arg-type]
    event = CloudEvent(id="e1", source="/t", type="user.created", specversion="1.0")
    await queue.accept(
        [Accepted(event, [NewDelivery(space="s", subscription_id="sub", function_id="f")])]
    )
    await run_until_final(dispatcher, hooks, DEADLINE_S)

    assert hooks.states == ["delivered"]  # not "dead": the cut-off call was no attempt
    assert invoker.calls == 2
    view = await queue.get_event("s", "e1")
    assert view is not None
    assert [d.attempts for d in view.deliveries] == [1]
    assert [a.outcome for a in view.deliveries[0].attempt_log] == ["delivered"]
