"""The Events API's own work per request, in-process, with N subscriptions (not a test).

Drives ``EventsApp`` directly (no sockets, no HTTP parsing, as ``bench.auth_probe`` does)
with a structured CloudEvent that ``--fanout`` at-most-once subscriptions match. The hand-off
to the delivery worker is replaced by a counter, so the figure is parsing, routing,
planning the deliveries and answering: what the app adds per request on the HTTP process's
core. Rounds are repeated and the median is reported.

``--filter`` gives every subscription a three-key content filter that the event passes:
``attributes`` (``source``, ``type``, ``id``) or ``data`` (``source`` and two keys of the
event's JSON data, which is then decoded once per event).

    .venv/bin/python -m bench.app_probe [--fanout 1 10] [--requests 20000] [--rounds 7]
                                        [--filter none|attributes|data]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

import httpx

from bench.auth_probe import event_scope, per_request_us
from eventgateway.app import Gateway
from eventgateway.queue.base import Accepted
from eventgateway.settings import Settings
from eventgateway.store.memory import MemoryStore

_CONFIG = "http://127.0.0.1:4001/v1/spaces/acme/"
_FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "attributes": {
        "source": [{"prefix": "/services/"}],
        "type": ["user.created"],
        "id": [{"exists": True}],
    },
    "data": {
        "source": [{"prefix": "/services/"}],
        "data": {"username": [{"exists": True}], "email": [{"suffix": "@testcorp.com"}]},
    },
}


async def _create(config: httpx.AsyncClient, resource: str, body: dict[str, Any]) -> None:
    response = await config.post(resource, json=body)
    if response.status_code != 201:
        raise RuntimeError(f"creating {resource}: {response.status_code} {response.text}")


async def measure(fanout: int, requests: int, rounds: int, pattern: str = "none") -> float:
    """Median µs per request over ``rounds`` rounds of ``requests`` requests."""
    gateway = Gateway(Settings(store_url="memory://", dispatch="inline"), store=MemoryStore())
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=gateway.asgi(4001))
        async with httpx.AsyncClient(transport=transport, base_url=_CONFIG) as config:
            await _create(config, "eventtypes", {"name": "user.created"})
            for index in range(fanout):
                url = f"http://127.0.0.1:9/f{index}"
                function = {"functionId": f"f{index}", "type": "http", "provider": {"url": url}}
                await _create(config, "functions", function)
                subscription = {
                    "type": "async",
                    "eventType": "user.created",
                    "functionId": f"f{index}",
                    "path": "/acme",
                    "delivery": "at-most-once",
                }
                if _FILTERS[pattern] is not None:
                    subscription["filter"] = _FILTERS[pattern]
                await _create(config, "subscriptions", subscription)
        app = gateway.events_app
        forwarded = 0

        def forward(items: list[Accepted]) -> bool:
            nonlocal forwarded
            forwarded += sum(len(item.deliveries) for item in items)
            return True

        app._forward_fast = forward
        scope = event_scope("/acme", [])
        samples = [await per_request_us(app, scope, requests) for _ in range(rounds)]
        if forwarded != fanout * requests * rounds:
            raise RuntimeError(f"{forwarded} deliveries planned, not {fanout * requests * rounds}")
        return statistics.median(samples)
    finally:
        await gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fanout", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--filter", choices=list(_FILTERS), default="none")
    args = parser.parse_args()
    label = "" if args.filter == "none" else f", filter on {args.filter}"
    for fanout in args.fanout:
        value = asyncio.run(measure(fanout, args.requests, args.rounds, args.filter))
        print(f"{fanout:3d} at-most-once subscription(s){label}: {value:6.2f} µs per request")


if __name__ == "__main__":
    main()
