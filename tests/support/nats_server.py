"""`nats-server -js` processes a test starts itself: on free loopback ports, with their own
store dirs, alone or as a cluster, so a test may kill and restart them.

Tests skip (fail in CI) when ``/usr/sbin/nats-server`` is missing.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import signal
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.support.ports import free_port

NATS_SERVER = os.environ.get("EG_TEST_NATS_SERVER", "/usr/sbin/nats-server")


def require_nats_server() -> None:
    """Skip the calling test (fail it in CI) when the nats-server binary is missing."""
    if shutil.which(NATS_SERVER) is None:
        reason = f"{NATS_SERVER} is missing; install nats-server to run this test"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class NatsServer:
    """One ``nats-server -js``; ports and store dir stay across :meth:`kill` and :meth:`start`."""

    def __init__(self, root: pathlib.Path, name: str) -> None:
        self.name = name
        self.store_dir = root / name
        self.port = free_port()
        self.monitor_port = free_port()
        self.cluster_port = free_port()
        self.routes: list[str] = []  # cluster URLs of the other nodes; empty: standalone
        self.config_lines: list[str] = []  # a config file's lines (-c), for options with no flag
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def cluster_url(self) -> str:
        return f"nats://127.0.0.1:{self.cluster_port}"

    def start(self) -> NatsServer:
        """Start the process (returns at once; :func:`wait_jetstream` waits for it)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            NATS_SERVER,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-sd",
            str(self.store_dir),
            "--name",
            self.name,
        ]
        if self.routes:
            args += [
                "--cluster_name",
                "eg-test",
                "--cluster",
                self.cluster_url,
                "--routes",
                ",".join(self.routes),
            ]
        if self.config_lines:
            config = self.store_dir.parent / f"{self.name}.conf"
            config.write_text("\n".join(self.config_lines) + "\n")
            args += ["-c", str(config)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients or the cluster, as a crashed machine."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def jsz(self, client: httpx.AsyncClient, **query: str) -> dict[str, Any]:
        """The monitoring endpoint's ``/jsz`` (JetStream state as this node sees it)."""
        response = await client.get(
            f"http://127.0.0.1:{self.monitor_port}/jsz", params=query, timeout=2
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def streams(self, client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
        """Stream name → its state, for the streams this node holds a replica of."""
        jsz = await self.jsz(client, accounts="true", streams="true")
        return {
            stream["name"]: stream.get("state", {})
            for account in jsz.get("account_details") or []
            for stream in account.get("stream_detail") or []
        }


def cluster(root: pathlib.Path, size: int = 3) -> list[NatsServer]:
    """``size`` nodes routed to each other (not started)."""
    nodes = [NatsServer(root, f"n{index + 1}") for index in range(size)]
    for node in nodes:
        node.routes = [other.cluster_url for other in nodes if other is not node]
    return nodes


async def wait_jetstream(nodes: list[NatsServer], timeout_s: float = 20.0) -> None:
    """Wait until every node answers ``/jsz`` with JetStream on (and, clustered, a meta leader)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        for node in nodes:
            while True:
                assert node.proc is not None
                assert node.proc.poll() is None, node.log()
                try:
                    jsz = await node.jsz(client)
                    if not node.routes or (jsz.get("meta_cluster") or {}).get("leader"):
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{node.name} not ready:\n{node.log()}"
                # Polling another process's state: there is no event to wait on.
                await asyncio.sleep(0.05)
