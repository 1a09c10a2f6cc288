"""A NATS client that nats-py closes for good (most server ``-ERR``s) stops the instance
with exit status 1, for its supervisor to start again (``eventgateway/fatal.py``).

The server here is a nats-server of the test's own with ``max_control_line: 320``: a
protocol line longer than that (a KV key from a 250-character name; the real limit is
4 KiB and the gateway keeps below 3 KiB) makes it answer ``-ERR`` and drop the
connection, which nats-py never reopens.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from eventgateway.queue.jetstream import JetStreamQueue
from tests.queue.kit import put
from tests.support.nats_server import NatsServer, require_nats_server, wait_jetstream
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

DEADLINE_S = 30.0
LONG_NAME = "f" * 250  # a valid name (at most 255), whose encoded key passes 320 bytes


@pytest.fixture
async def strict_node(tmp_path: pathlib.Path) -> AsyncIterator[NatsServer]:
    require_nats_server()
    node = NatsServer(tmp_path, "strict")
    node.config_lines = ["max_control_line: 320"]
    await asyncio.to_thread(node.start)
    try:
        await wait_jetstream([node])
        yield node
    finally:
        await asyncio.to_thread(node.stop)


async def test_serve_exits_1_once_its_config_store_client_is_closed_for_good(
    tmp_path: pathlib.Path, strict_node: NatsServer
) -> None:
    store = f"--store={strict_node.url}?prefix=t{uuid.uuid4().hex[:10]}"
    gateway = GatewayProcess(tmp_path / "gw", store, "--shutdown-timeout", "2")
    await asyncio.to_thread(gateway.start, 30.0)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            # A read of the key goes first (does the function exist?): that line is too long.
            await client.post(
                f"{gateway.config_url}/v1/spaces/default/functions",
                json={
                    "functionId": LONG_NAME,
                    "type": "http",
                    "provider": {"url": "http://127.0.0.1:9/"},
                },
            )
        assert gateway.proc is not None
        status = await asyncio.to_thread(gateway.proc.wait, DEADLINE_S)
    finally:
        await asyncio.to_thread(gateway.stop)

    log = gateway.log()
    assert status == 1, log
    assert "configuration store's NATS connection" in log
    assert "was closed for good (nats: maximum control line exceeded)" in log
    assert "this instance stops with exit status 1" in log
    assert "reconnecting" not in log  # it never will: closed for good


async def test_a_queue_reports_its_client_closed_for_good_but_not_its_own_close(
    strict_node: NatsServer,
) -> None:
    lost: list[str] = []
    prefix = f"t{uuid.uuid4().hex[:10]}"
    healthy = JetStreamQueue(strict_node.url, prefix=prefix, fetch_wait_s=1.0)
    healthy.on_lost = lost.append
    await healthy.open()
    await put(healthy, "short-id", "s1")
    await healthy.close()  # closed by its owner: nothing to report
    assert lost == []

    queue = JetStreamQueue(strict_node.url, prefix=prefix, fetch_wait_s=1.0)
    queue.on_lost = lost.append
    await queue.open()
    try:
        # The queue's subjects are short (hashed tokens), so its client is made to send
        # a line past the server's limit directly.
        client = queue._nc
        assert client is not None
        with contextlib.suppress(Exception):  # the flush may meet the close
            await client.publish("x." + 2 * LONG_NAME, b"")
            await client.flush()
        deadline = time.monotonic() + DEADLINE_S
        while not lost:
            assert time.monotonic() < deadline, "the loss was never reported"
            await asyncio.sleep(0.05)  # nats-py closes in a task of its own
        assert lost == [
            "the delivery queue's NATS connection was closed for good "
            "(nats: maximum control line exceeded)"
        ]
        assert queue.health() == "the delivery queue's NATS connection is down"
    finally:
        await queue.close()
    assert len(lost) == 1
