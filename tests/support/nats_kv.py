"""The NATS server the store tests run against (127.0.0.1:4222), and bucket cleanup.

Tests skip when it is unreachable, except in CI (``CI`` set), where that is a failure:
a missing server must not turn the cluster tests silently green.
"""

from __future__ import annotations

import os
import socket
import uuid

import nats
import pytest

NATS_URL = os.environ.get("EG_TEST_NATS_URL", "nats://127.0.0.1:4222")


def require_nats() -> None:
    """Skip the calling test (fail it in CI) when the NATS server is unreachable."""
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=1.0).close()
    except OSError as exc:
        reason = f"no NATS server at {NATS_URL} ({exc}); start `nats-server -js`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def unique_prefix() -> str:
    """A prefix no other test (or parallel run) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


async def delete_buckets(prefix: str, *names: str) -> None:
    """Delete the KV buckets ``<prefix>-<name>`` a test made; missing ones are fine."""
    nc = await nats.connect(servers=[NATS_URL], connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        for name in names:
            try:
                await js.delete_key_value(f"{prefix}-{name}")
            except nats.js.errors.NotFoundError:
                pass
    finally:
        await nc.close()


async def delete_prefix(prefix: str) -> list[str]:
    """Delete every stream, KV bucket and object store named for ``prefix``; their names.

    A cluster-mode gateway makes several (config, deliveries, dead letters, delivery log,
    function logs, bundles); a test on its own prefix removes them all afterwards.
    """
    nc = await nats.connect(servers=[NATS_URL], connect_timeout=2, max_reconnect_attempts=0)
    deleted: list[str] = []
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if name.startswith((prefix, f"KV_{prefix}", f"OBJ_{prefix}")):
                await js.delete_stream(name)
                deleted.append(name)
    finally:
        await nc.close()
    return deleted
