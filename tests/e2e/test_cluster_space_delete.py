"""Cluster mode, auth on: a space deleted through one instance ends the log tails that
another instance still serves for it (docs/security.md: a deleted space's logs never pass
to the name's next owner — an open tail on another instance would follow them)."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.nats_kv import NATS_URL, delete_prefix, require_nats, unique_prefix
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e


def test_a_space_deleted_through_one_instance_ends_its_tails_on_another(
    tmp_path: pathlib.Path,
) -> None:
    require_nats()
    prefix = unique_prefix()
    store = f"--store={NATS_URL}?prefix={prefix}"
    # A shutdown timeout longer than the test's: a tail left open would hold the stop.
    a = GatewayProcess(tmp_path / "a", store, auth=True)
    b = GatewayProcess(tmp_path / "b", store, "--shutdown-timeout", "60", auth=True)
    try:
        a.start()
        b.start()
        claimed = httpx.post(f"{a.config_url}/v1/spaces", json={"name": "acme"})
        assert claimed.status_code == 201, claimed.text
        key = {"authorization": f"Bearer {claimed.json()['apiKey']}"}
        function = {
            "functionId": "fn",
            "type": "http",
            "provider": {"url": "https://example.com/fn"},
        }
        created = httpx.post(f"{a.config_url}/v1/spaces/acme/functions", json=function, headers=key)
        assert created.status_code == 201, created.text

        url = f"{b.config_url}/v1/spaces/acme/functions/fn/logs/stream"
        ended = threading.Event()
        rest: list[bytes] = []

        def follow(chunks: Iterator[bytes]) -> None:
            rest.extend(chunks)  # returns only when the gateway ends the stream
            ended.set()

        # B may learn of the function a moment after A answered: retry the 404 briefly.
        with httpx.Client(timeout=httpx.Timeout(5, read=60)) as client:
            for _ in range(50):
                request = client.build_request("GET", url, headers=key)
                response = client.send(request, stream=True)
                if response.status_code != 404:
                    break
                response.close()
                threading.Event().wait(0.1)  # B's watch: no event of ours to wait on
            assert response.status_code == 200, response.read()
            chunks = response.iter_raw()
            next(chunks)  # open: its first keep-alive arrived
            reader = threading.Thread(target=follow, args=(chunks,), daemon=True)
            reader.start()

            gone = httpx.delete(f"{a.config_url}/v1/spaces/acme/functions/fn", headers=key)
            assert gone.status_code == 204, gone.text
            deleted = httpx.delete(f"{a.config_url}/v1/spaces/acme", headers=key)
            assert deleted.status_code == 204, deleted.text

            assert ended.wait(30), "B kept the deleted space's tail open"
            response.close()
        assert b"data:" not in b"".join(rest)
    finally:
        for process in (a, b):
            if process.proc is not None:
                process.stop()
        asyncio.run(delete_prefix(prefix))
