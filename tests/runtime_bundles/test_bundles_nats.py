"""Bundles shared through the NATS object store: two instances (two data directories, one
prefix); a zip uploaded through one is known to, fetched by and run on the other."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import pathlib

import nats
import pytest

from eventgateway.errors import StoreError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.runtime import RuntimeProvider
from eventgateway.runtime.bundles_nats import NatsBundleStore
from eventgateway.runtime.logs import MemoryLogStore
from eventgateway.runtime.pool import FunctionRuntime
from tests.runtime_bundles.test_bundles import HANDLER, make_zip
from tests.support.nats_kv import NATS_URL, require_nats, unique_prefix

DEADLINE_S = 5.0


@pytest.fixture
async def pair(tmp_path: pathlib.Path):
    """Two opened stores on one new prefix, each with its own connection and directory."""
    require_nats()
    prefix = unique_prefix()
    async with contextlib.AsyncExitStack() as stack:
        stores = []
        for name in ("a", "b"):
            nc = await nats.connect(servers=[NATS_URL], connect_timeout=2, max_reconnect_attempts=0)
            stack.push_async_callback(nc.close)
            store = NatsBundleStore(tmp_path / name / "bundles", nc, prefix=prefix)
            await store.open()
            stack.push_async_callback(store.close)
            stores.append(store)
        yield stores
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_object_store(f"{prefix}-bundles")


async def test_a_bundle_uploaded_through_one_instance_is_fetched_by_the_other(pair):
    a, b = pair
    zip_bytes = make_zip(HANDLER)
    bundle_id = hashlib.sha256(zip_bytes).hexdigest()

    info, created = await a.add(zip_bytes)

    assert created
    assert info.bundle_id == bundle_id
    assert await b.wait_known(bundle_id, DEADLINE_S)  # through the bucket's watch
    assert b.get(bundle_id) is None  # not extracted here yet
    fetched = await b.ensure(bundle_id)
    assert fetched is not None
    assert fetched.path.parent == b.root
    assert (fetched.path / "handler.py").read_text() == HANDLER["handler.py"]
    assert b.get(bundle_id) == fetched


async def test_concurrent_ensures_share_one_fetch_and_unknown_bundles_are_none(pair):
    a, b = pair
    info = await a.put(make_zip({"x.py": "x = 1\n"}))

    results = await asyncio.gather(*(b.ensure(info.bundle_id) for _ in range(5)))

    assert len({result.path for result in results if result is not None}) == 1
    assert await b.ensure("0" * 64) is None
    assert await b.ensure("not a bundle id") is None
    assert not b.exists("0" * 64)


async def test_a_function_deployed_through_one_instance_runs_on_the_other(pair):
    a, b = pair
    info = await a.put(make_zip(HANDLER))
    runtime = FunctionRuntime(MemoryLogStore())
    provider = RuntimeProvider("python", runtime, b)
    function = Function(
        space="acme",
        function_id="hello",
        type="python",
        provider={"bundle": info.bundle_id, "handler": "handler.handler", "runtime": "python3.11"},
    )
    try:
        assert await b.wait_known(info.bundle_id, DEADLINE_S)
        provider.validate(function)
        reply = await provider.call(function, Call(body=b"{}"))
    finally:
        await runtime.close()
    assert b'"success"' in reply.body


async def test_an_unopened_store_says_so(pair, tmp_path):
    a, _ = pair
    store = NatsBundleStore(tmp_path, a._js._nc, prefix="p")
    with pytest.raises(StoreError, match="not open"):
        await store.ensure("0" * 64)
    with pytest.raises(ValueError, match=r"prefix 'a\.b'"):
        NatsBundleStore(tmp_path, a._js._nc, prefix="a.b")
