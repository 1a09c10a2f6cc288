"""The answer to a request the shutdown cut off: retry it, unless it called a function."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from eventgateway.api.events import CALLS_FUNCTION
from eventgateway.asgi_routing import PortRouter

CONFIG_PORT = 4001


class _Hung:
    """An API whose requests hang until cancelled (as uvicorn does past the timeout)."""

    def __init__(self, calls_function: bool) -> None:
        self._calls_function = calls_function
        self.arrived = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._calls_function:
            scope[CALLS_FUNCTION] = True
        self.arrived.set()
        await asyncio.Event().wait()


async def _cut_off(path: str, port: int, *, calls_function: bool) -> tuple[int, dict[bytes, bytes]]:
    events, config = _Hung(calls_function), _Hung(calls_function)
    gateway = type("G", (), {"events_app": events, "config_app": config})()
    router = PortRouter(gateway, CONFIG_PORT)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "server": ("127.0.0.1", port)}
    request = asyncio.create_task(router(scope, None, send))
    await asyncio.wait_for((config if port == CONFIG_PORT else events).arrived.wait(), 5)
    request.cancel()
    await request
    start = sent[0]
    return start["status"], dict(start["headers"])


@pytest.mark.parametrize(
    ("path", "port", "calls_function", "retry"),
    [
        ("/acme/users", 4000, False, True),  # an emit: accepted at most once (de-duplicated)
        ("/acme/users", 4000, True, False),  # a sync route's function call
        ("/v1/spaces/acme/functions/f/invoke", CONFIG_PORT, False, False),
        ("/v1/spaces/acme/functions", CONFIG_PORT, False, True),
    ],
)
async def test_a_cut_off_request_invites_a_retry_only_if_no_function_may_have_run(
    path: str, port: int, calls_function: bool, retry: bool
):
    status, headers = await _cut_off(path, port, calls_function=calls_function)

    assert status == 503
    assert (b"retry-after" in headers) is retry
