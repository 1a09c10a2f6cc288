"""Deleting a space gives up its delivery log and function logs (docs/security.md), on
SQLite files with a real receiver: the QA repro end to end, and the 400s while the space
still has dead letters or deliveries not yet settled. Waits poll a condition under a
deadline."""

from __future__ import annotations

import asyncio
import functools
import io
import pathlib
import urllib.parse
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.runtime.base import LogLine
from eventgateway.runtime.logs_sqlite import SqliteLogStore
from tests.api.support_config import errors
from tests.api.test_deliveries_api import eventually
from tests.auth.authkit import START_S, AuthGateway, auth_gateway, bearer
from tests.support.receiver import Receiver, Reply

TYPE = "user.created"
STRUCTURED = {"content-type": "application/cloudevents+json"}
DEAD_AFTER_ONE = {"maxAttempts": 1}
RETRY_MUCH_LATER = {  # a failed delivery stays "retrying" for the whole test
    "maxAttempts": 5,
    "initialDelayMs": 3_600_000,
    "maxDelayMs": 3_600_000,
    "jitter": False,
}
WAIT = "with the space's subscriptions removed, each is skipped when it next falls due"


@pytest.fixture
async def gw(tmp_path: pathlib.Path) -> AsyncIterator[AuthGateway]:
    async with auth_gateway(tmp_path / "data") as gateway:
        yield gateway


class Service:
    """One space's event type, functions (at the receiver) and async subscriptions."""

    def __init__(self, gw: AuthGateway, receiver: Receiver, space: str, key: str) -> None:
        self.gw, self.receiver, self.space, self.key = gw, receiver, space, key
        self.functions: list[str] = []
        self.subscriptions: list[str] = []

    async def function(self, name: str, reply: Reply | None = None, **options: Any) -> None:
        if not self.functions:
            await self.gw.create(self.space, "eventtypes", {"name": TYPE}, self.key)
        route = f"/{self.space}/{name}"
        if reply is not None:
            self.receiver.reply(route, reply)
        function = {
            "functionId": name,
            "type": "http",
            "provider": {"url": self.receiver.url(route)},
        }
        await self.gw.create(self.space, "functions", function, self.key)
        body = {"type": "async", "eventType": TYPE, "functionId": name, "path": f"/{self.space}"}
        subscription = await self.gw.create(
            self.space, "subscriptions", {**body, **options}, self.key
        )
        self.functions.append(name)
        self.subscriptions.append(subscription["subscriptionId"])

    async def emit(self, *event_ids: str) -> None:
        for event_id in event_ids:
            event = {"specversion": "1.0", "id": event_id, "source": "/t", "type": TYPE}
            response = await self.gw.events.post(f"/{self.space}", json=event, headers=STRUCTURED)
            assert response.status_code == 202, response.text

    async def state(self, event_id: str) -> str | None:
        """The event's state in the delivery log, then each delivery's (sorted)."""
        url = f"/v1/spaces/{self.space}/events/{event_id}"
        response = await self.gw.config.get(url, headers=bearer(self.key))
        if response.status_code != 200:
            return None
        view = response.json()
        return " ".join([view["state"], *sorted(d["state"] for d in view["deliveries"])])

    async def remove(self) -> None:
        """Everything ``eg remove`` would: subscriptions, functions, the event type."""
        base = f"/v1/spaces/{self.space}"
        urls = [
            f"{base}/subscriptions/{urllib.parse.quote(s, safe='')}" for s in self.subscriptions
        ]
        urls += [f"{base}/functions/{name}" for name in self.functions]
        urls.append(f"{base}/eventtypes/{TYPE}")
        for url in urls:
            response = await self.gw.config.delete(url, headers=bearer(self.key))
            assert response.status_code == 204, (url, response.text)

    async def delete(self) -> Any:
        return await self.gw.config.delete(f"/v1/spaces/{self.space}", headers=bearer(self.key))


async def test_a_deleted_spaces_logs_do_not_pass_to_whoever_claims_the_name_next(
    gw: AuthGateway, receiver: Receiver
) -> None:
    assert isinstance(gw.gateway.queue, SqliteQueue)
    assert isinstance(gw.gateway.runtime.logs, SqliteLogStore)
    old = Service(gw, receiver, "delta", (await gw.claim("delta"))["apiKey"])
    await old.function("f")
    await old.emit("d1")
    await eventually(lambda: old.state("d1"), lambda state: state == "delivered delivered", "d1")
    logs = gw.gateway.runtime.logs
    logs.append([LogLine("delta", "f", "req-1", START_S, "stdout", "the old owner's secret")])
    await old.remove()
    assert (await old.delete()).status_code == 204

    await gw.claim("delta", as_operator=True)
    reader = bearer(await gw.key("delta", "read"))

    event = await gw.config.get("/v1/spaces/delta/events/d1", headers=reader)
    listed = await gw.config.get("/v1/spaces/delta/events", headers=reader)
    lines = await gw.config.get("/v1/spaces/delta/functions/f/logs", headers=reader)
    assert event.status_code == 404
    assert listed.json() == {"events": []}
    assert lines.status_code == 404  # no such function, and no line of it kept


async def test_a_function_still_running_at_the_delete_logs_nothing_for_the_next_owner(
    gw: AuthGateway,
) -> None:
    # Found by QA: an invocation started before the delete went on printing, and its
    # lines were stored under the name after the operator had claimed it again.
    api_key = (await gw.claim("late"))["apiKey"]
    key = bearer(api_key)
    handler = (
        "import time\n"
        "def handler(event, context):\n"
        "    for tick in range(300):\n"
        "        print('old owner secret', tick, flush=True)\n"
        "        time.sleep(0.1)\n"
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", handler)
    uploaded = await gw.config.post(
        "/v1/spaces/late/bundles",
        content=archive.getvalue(),
        headers={**key, "content-type": "application/zip"},
    )
    assert uploaded.status_code == 201, uploaded.text
    function = {
        "functionId": "ticker",
        "type": "python",
        "provider": {"bundle": uploaded.json()["bundleId"], "handler": "handler.handler"},
    }
    await gw.create("late", "functions", function, api_key)
    logs_url = "/v1/spaces/late/functions/ticker/logs"
    invoking = asyncio.create_task(
        gw.config.post("/v1/spaces/late/functions/ticker/invoke", json={}, headers=key)
    )
    await eventually(
        lambda: gw.config.get(logs_url, headers=key),
        lambda response: "old owner secret 2" in response.text,
        "the ticks",
    )
    removed = await gw.config.delete("/v1/spaces/late/functions/ticker", headers=key)
    assert removed.status_code == 204

    assert (await gw.config.delete("/v1/spaces/late", headers=key)).status_code == 204
    await gw.claim("late", as_operator=True)  # at once: the old invocation may still run
    reader = bearer(await gw.key("late", "read"))
    answer = await asyncio.wait_for(invoking, 10)
    assert not answer.json()["ok"]  # killed by the delete (else: its 6 s timeout)

    assert (await gw.config.get(logs_url, headers=reader)).status_code == 404


async def test_dead_letters_hold_the_delete_until_they_are_purged(
    gw: AuthGateway, receiver: Receiver
) -> None:
    acme = Service(gw, receiver, "acme", (await gw.claim("acme"))["apiKey"])
    await acme.function("f", Reply(status=500), retryPolicy=DEAD_AFTER_ONE)
    await acme.emit("a1", "a2")
    for event_id in ("a1", "a2"):
        await eventually(
            functools.partial(acme.state, event_id), lambda s: s == "dead dead", event_id
        )
    await acme.remove()

    refused = await acme.delete()

    assert refused.status_code == 400
    assert errors(refused) == (
        'Space "acme" still holds 2 dead letters; purge them first '
        "(DELETE /v1/spaces/acme/deadletters?all=true)."
    )
    purge = await gw.config.delete(
        "/v1/spaces/acme/deadletters", params={"all": "true"}, headers=bearer(acme.key)
    )
    assert purge.json() == {"purged": 2}
    assert (await acme.delete()).status_code == 204


async def test_deliveries_not_yet_settled_hold_the_delete(
    gw: AuthGateway, receiver: Receiver
) -> None:
    acme = Service(gw, receiver, "acme", (await gw.claim("acme"))["apiKey"])
    await acme.function("f", Reply(status=503), retryPolicy=RETRY_MUCH_LATER)
    await acme.emit("r1")
    await eventually(lambda: acme.state("r1"), lambda s: s == "retrying retrying", "r1")
    await acme.remove()

    refused = await acme.delete()

    assert refused.status_code == 400
    assert errors(refused) == (
        f'Space "acme" still has 1 delivery not yet settled, still being delivered ({WAIT}); '
        "delete it once none is left."
    )
    assert (await gw.config.get("/v1/spaces/acme", headers=bearer(acme.key))).status_code == 200


async def test_both_are_counted_in_one_answer(gw: AuthGateway, receiver: Receiver) -> None:
    acme = Service(gw, receiver, "acme", (await gw.claim("acme"))["apiKey"])
    await acme.function("dies", Reply(status=500), retryPolicy=DEAD_AFTER_ONE)
    await acme.function("waits", Reply(status=503), retryPolicy=RETRY_MUCH_LATER)
    await acme.emit("b1", "b2")
    for event_id in ("b1", "b2"):  # one delivery dead, the other retrying: "dead" overall
        await eventually(
            functools.partial(acme.state, event_id), lambda s: s == "dead dead retrying", event_id
        )
    await acme.remove()

    refused = await acme.delete()

    assert errors(refused) == (
        'Space "acme" still holds 2 dead letters and 2 deliveries not yet settled: purge the '
        "dead letters (DELETE /v1/spaces/acme/deadletters?all=true) and wait until the "
        f"deliveries are settled ({WAIT}), then delete it."
    )
