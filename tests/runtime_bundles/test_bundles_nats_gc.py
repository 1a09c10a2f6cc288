"""Garbage collection of the bundles object store: a bundle no function names is deleted once
its grace period has passed, everywhere; a named one, or one inside the grace, stays.

Runs against the NATS server at 127.0.0.1:4222 on a prefix of its own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import pathlib
import time
from collections.abc import Callable

import nats
import pytest

from eventgateway.model.entities import Function, encode_entity
from eventgateway.runtime.bundles_nats import NatsBundleStore
from eventgateway.store.nats import NatsStore
from tests.runtime_bundles.test_bundles import make_zip
from tests.support.nats_kv import NATS_URL, delete_prefix, require_nats, unique_prefix

DEADLINE_S = 5.0
GRACE_S = 600.0


class Clock:
    """Wall-clock seconds, shifted by what the test sets."""

    def __init__(self) -> None:
        self.shift_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift_s


@pytest.fixture
async def cluster(tmp_path: pathlib.Path):
    """A config store and two bundle stores (a, b) on one new prefix, and their clock."""
    require_nats()
    prefix = unique_prefix()
    clock = Clock()
    try:
        async with contextlib.AsyncExitStack() as stack:
            config = NatsStore([NATS_URL], prefix=prefix)
            await config.open()
            stack.push_async_callback(config.close)

            async def bundles(name: str, **kw: object) -> NatsBundleStore:
                nc = await nats.connect(servers=[NATS_URL], connect_timeout=2)
                stack.push_async_callback(nc.close)
                kw.setdefault("gc_interval_s", None)
                store = NatsBundleStore(
                    tmp_path / name / "bundles",
                    nc,
                    prefix=prefix,
                    gc_grace_s=GRACE_S,
                    clock=clock,
                    **kw,  # type: ignore[arg-type]
                )
                await store.open()
                stack.push_async_callback(store.close)
                return store

            yield config, bundles, clock
    finally:
        await delete_prefix(prefix)


async def name_bundle(config: NatsStore, function_id: str, bundle_id: str) -> None:
    function = Function(
        space="acme",
        function_id=function_id,
        type="python",
        provider={"bundle": bundle_id, "handler": "handler.handler"},
    )
    await config.create("functions", "acme", function_id, encode_entity(function))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition a watch or a periodic sweep makes true, up to the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)  # the watch runs in this loop: give it a turn


async def test_only_bundles_no_function_names_go_and_only_after_the_grace(cluster):
    config, bundles, clock = cluster
    a, b = await bundles("a"), await bundles("b")
    named = await a.put(make_zip({"named.py": "x = 1\n"}))
    orphan = await a.put(make_zip({"orphan.py": "x = 2\n"}))
    await name_bundle(config, "f1", named.bundle_id)
    assert await b.ensure(orphan.bundle_id) is not None  # b has its own copy too

    assert await a.collect_garbage() == []  # both inside the grace period
    clock.shift_s = GRACE_S + 1
    removed = await a.collect_garbage()

    assert removed == [orphan.bundle_id]
    assert not a.exists(orphan.bundle_id)
    # b drops its copy on the delete its watch sees, else at its own next sweep (nats-server
    # 2.9.10 can skip a watched update that a purge follows at once: its PR #3838).
    assert await b.collect_garbage() == []  # nothing left to delete
    assert not (a.root / orphan.bundle_id).exists()  # every instance drops its copy
    assert not (b.root / orphan.bundle_id).exists()
    assert not b.exists(orphan.bundle_id)
    assert a.exists(named.bundle_id)
    assert b.exists(named.bundle_id)


async def test_a_deleted_bundle_uploaded_again_is_shared_again(cluster):
    _, bundles, clock = cluster
    a, b = await bundles("a"), await bundles("b")
    orphan = await a.put(make_zip({"orphan.py": "x = 2\n"}))
    clock.shift_s = GRACE_S + 1
    assert await b.collect_garbage() == [orphan.bundle_id]
    await a.collect_garbage()  # catches up if a's watch missed the delete (see above)
    assert not a.exists(orphan.bundle_id)

    _, created = await a.add(make_zip({"orphan.py": "x = 2\n"}))

    assert created
    assert await b.ensure(orphan.bundle_id) is not None  # fetched from the bucket again


async def test_the_periodic_sweep_deletes_a_bundle_once_its_function_is_deleted(cluster):
    config, bundles, clock = cluster
    clock.shift_s = GRACE_S + 1  # every upload is past its grace at once
    a, b = await bundles("a", gc_interval_s=0.1), await bundles("b")
    zips = [make_zip({"kept.py": "x = 1\n"}), make_zip({"dropped.py": "x = 2\n"})]
    # Named before they are uploaded, so the running sweep never sees them unnamed.
    for function_id, zip_bytes in zip(("keeps", "drops"), zips, strict=True):
        await name_bundle(config, function_id, hashlib.sha256(zip_bytes).hexdigest())
    kept, dropped = [await b.put(zip_bytes) for zip_bytes in zips]
    assert b.exists(dropped.bundle_id)

    await config.delete("functions", "acme", "drops")

    await until(lambda: a.exists(kept.bundle_id) and not a.exists(dropped.bundle_id))
    await b.collect_garbage()  # b's watch saw the delete, or its own sweep catches up
    assert not b.exists(dropped.bundle_id)
    assert b.exists(kept.bundle_id)
