"""Garbage collection of the local bundle store (``runtime/bundles_local.py``): a bundle no
function names is deleted once unused for its grace period; a named one, a recently used
one, or one whose code may still run, stays.

Bundles are real zips extracted under a temporary directory; the clock is injected; the
functions' bundle ids come from a callable standing in for the config store (and, in the
last tests, from a real ``MemoryStore``). One test runs a real Python worker, and the last
a whole in-process gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import time
from collections.abc import Callable

import httpx
import pytest

from eventgateway.app import Gateway
from eventgateway.errors import StoreError
from eventgateway.model.entities import Function, encode_entity
from eventgateway.runtime.bundles_local import LocalBundleStore
from eventgateway.runtime.service import BundleTrackingRuntime, LocalRuntime, bundles_named_in
from eventgateway.settings import Settings
from eventgateway.store.memory import MemoryStore
from tests.runtime.conftest import RecordingSink, make_spec
from tests.runtime_bundles.test_bundles import left_behind, make_zip
from tests.support.inprocess import CONFIG

GRACE_S = 600.0
DEADLINE_S = 10.0


class Clock:
    """Wall-clock seconds, shifted by what the test sets."""

    def __init__(self) -> None:
        self.shift_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift_s


class Functions:
    """The bundle ids functions name, as the config store answers; counts the reads."""

    def __init__(self) -> None:
        self.bundles: set[str] = set()
        self.reads = 0
        self.during_read: Callable[[], object] | None = None
        self.fail_reads = 0

    async def __call__(self) -> set[str]:
        self.reads += 1
        if self.reads <= self.fail_reads:
            raise StoreError("the config store is down")
        if self.during_read is not None:
            self.during_read()
        return set(self.bundles)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "bundles"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def functions() -> Functions:
    return Functions()


@pytest.fixture
def store(root, clock, functions) -> LocalBundleStore:
    return LocalBundleStore(
        root, named=functions, gc_grace_s=GRACE_S, gc_interval_s=None, clock=clock
    )


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)  # the sweep runs in this loop: give it a turn


async def test_only_bundles_no_function_names_go_and_only_after_the_grace(
    store, root, clock, functions
):
    named = await store.put(make_zip({"named.py": "x = 1\n"}))
    orphan = await store.put(make_zip({"orphan.py": "x = 2\n"}))
    functions.bundles = {named.bundle_id}

    assert await store.collect_garbage() == []  # both inside the grace period
    clock.shift_s = GRACE_S + 1
    removed = await store.collect_garbage()

    assert removed == [orphan.bundle_id]
    assert store.get(orphan.bundle_id) is None
    assert left_behind(root) == [named.bundle_id]  # nothing renamed-away is left either
    assert store.get(named.bundle_id) == named
    assert await store.collect_garbage() == []


@pytest.mark.parametrize("use", ["upload again", "look up", "validate a function"])
async def test_a_use_keeps_an_unnamed_bundle_for_another_grace(store, clock, use):
    data = make_zip({"handler.py": "x = 1\n"})
    info = await store.put(data)
    clock.shift_s = GRACE_S + 1  # unused for longer than the grace

    if use == "upload again":
        _, created = await store.add(data)
        assert not created
    elif use == "look up":
        store.touch(info.bundle_id)  # GET/HEAD …/bundles/{id}
    else:
        assert store.exists(info.bundle_id)

    assert await store.collect_garbage() == []
    clock.shift_s = 2 * (GRACE_S + 1)
    assert await store.collect_garbage() == [info.bundle_id]


async def test_a_function_validated_while_the_sweep_reads_the_functions_keeps_its_bundle(
    store, clock, functions
):
    info = await store.put(make_zip({"handler.py": "x = 1\n"}))
    clock.shift_s = GRACE_S + 1
    # A function naming the bundle is validated after the sweep listed the bundles, and
    # written after it read the functions: the read does not show it yet.
    functions.during_read = lambda: store.exists(info.bundle_id)

    assert await store.collect_garbage() == []
    assert store.exists(info.bundle_id)


async def test_a_bundle_whose_code_may_run_is_kept_until_a_later_sweep(root, clock, functions):
    running: set[str] = set()
    store = LocalBundleStore(
        root,
        named=functions,
        in_use=running.__contains__,
        gc_grace_s=GRACE_S,
        gc_interval_s=None,
        clock=clock,
    )
    info = await store.put(make_zip({"handler.py": "x = 1\n"}))
    clock.shift_s = GRACE_S + 1
    running.add(info.bundle_id)

    assert await store.collect_garbage() == []
    running.clear()
    assert await store.collect_garbage() == [info.bundle_id]


async def test_a_deleted_bundle_can_be_uploaded_again(store, clock):
    data = make_zip({"handler.py": "x = 1\n"})
    info = await store.put(data)
    clock.shift_s = GRACE_S + 1
    assert await store.collect_garbage() == [info.bundle_id]
    assert not store.exists(info.bundle_id)

    again, created = await store.add(data)

    assert created
    assert again == info
    assert (info.path / "handler.py").read_text() == "x = 1\n"


async def test_directories_that_are_not_bundles_are_left_alone(store, root, clock):
    root.mkdir()
    for name in ("notes", "0" * 64, ".tmp-upload-in-progress"):  # "0"*64: no metadata
        (root / name).mkdir()
    clock.shift_s = 10 * GRACE_S

    assert await store.collect_garbage() == []
    assert left_behind(root) == sorted([".tmp-upload-in-progress", "0" * 64, "notes"])


async def test_the_sweep_runs_every_interval_and_outlives_a_failed_one(root, clock, functions):
    functions.fail_reads = 1  # the first sweep cannot read the functions
    store = LocalBundleStore(
        root, named=functions, gc_grace_s=GRACE_S, gc_interval_s=0.05, clock=clock
    )
    info = await store.put(make_zip({"handler.py": "x = 1\n"}))
    clock.shift_s = GRACE_S + 1
    await store.open()
    try:
        await until(lambda: not (root / info.bundle_id).exists())
    finally:
        await store.close()

    assert functions.reads >= 2
    assert store.get(info.bundle_id) is None


async def test_without_an_interval_no_sweep_runs(root, clock, functions):
    store = LocalBundleStore(root, named=functions, gc_interval_s=None, clock=clock)
    await store.open()
    await store.close()

    assert functions.reads == 0


# -- what the gateway wires ---------------------------------------------------------------------


async def test_bundles_named_in_reads_the_functions_of_every_space():
    config = MemoryStore()
    await config.open()
    functions = [
        Function("acme", "a", "python", {"bundle": "1" * 64, "handler": "h.h"}),
        Function("other", "b", "nodejs", {"bundle": "2" * 64, "handler": "h.h"}),
        Function("acme", "c", "http", {"url": "https://example.com/"}),
    ]
    for function in functions:
        await config.create(
            "functions", function.space, function.function_id, encode_entity(function)
        )

    assert await bundles_named_in(config)() == {"1" * 64, "2" * 64}


async def test_the_local_runtime_collects_only_when_told_which_bundles_are_named(tmp_path):
    config = MemoryStore()
    await config.open()
    collecting = LocalRuntime(tmp_path / "a", named_bundles=bundles_named_in(config))
    plain = LocalRuntime(tmp_path / "b")

    assert isinstance(collecting.bundles, LocalBundleStore)
    assert not isinstance(plain.bundles, LocalBundleStore)
    await collecting.close()
    await plain.close()


async def test_a_running_invocation_and_then_its_warm_workers_keep_the_bundle(
    tmp_path, store, clock, functions
):
    handler = """
import os, time

def handler(event, context):
    open(event["started"], "w").close()
    deadline = time.monotonic() + 10
    while not os.path.exists(event["go"]):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.01)
    import late  # read from the bundle's directory only now
    return {"late": late.VALUE}
"""
    info = await store.put(make_zip({"handler.py": handler, "late.py": "VALUE = 42\n"}))
    now = [0.0]
    runtime = BundleTrackingRuntime(RecordingSink(), idle_s=30.0, monotonic=lambda: now[0])
    gated = LocalBundleStore(
        store.root,
        named=functions,
        in_use=runtime.runs_bundle,
        gc_grace_s=GRACE_S,
        gc_interval_s=None,
        clock=clock,
    )
    spec = make_spec(
        "handler.handler", bundle=info.path, bundle_id=info.bundle_id, function_id="deleted"
    )
    started, go = tmp_path / "started", tmp_path / "go"
    event = json.dumps({"started": str(started), "go": str(go)}).encode()
    try:
        call = asyncio.create_task(runtime.invoke(spec, event))
        await until(started.exists)
        clock.shift_s = GRACE_S + 1  # unnamed and long unused: only the invocation holds it

        assert await gated.collect_garbage() == []
        go.touch()
        result = await call
        assert result.ok, result.payload
        assert json.loads(result.payload) == {"late": 42}

        assert await gated.collect_garbage() == []  # its warm worker may run it again
        now[0] += 30.0 + 60.0  # past the idle time: the worker is stopped by then
        assert await gated.collect_garbage() == [info.bundle_id]
    finally:
        await runtime.close()


async def test_the_gateway_deletes_only_the_bundles_its_functions_do_not_name(tmp_path):
    gateway = Gateway(
        Settings(store_url="memory://", dispatch="inline", shutdown_timeout_s=0.5),
        store=MemoryStore(),
    )
    await gateway.start()
    transport = httpx.ASGITransport(app=gateway.asgi(4001))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=CONFIG) as config:
            ids = []
            for n in range(2):
                uploaded = await config.post(
                    "/v1/spaces/acme/bundles", content=make_zip({"handler.py": f"x = {n}\n"})
                )
                assert uploaded.status_code == 201, uploaded.text
                ids.append(uploaded.json()["bundleId"])
            named, orphan = ids
            function = {
                "functionId": "crm",
                "type": "python",
                "provider": {"bundle": named, "handler": "handler.handler"},
            }
            created = await config.post("/v1/spaces/acme/functions", json=function)
            assert created.status_code == 201, created.text
        bundles = gateway.runtime.bundles
        assert isinstance(bundles, LocalBundleStore)
        two_hours_ago = time.time() - 7200
        for bundle_id in ids:  # both unused for longer than the 1 h grace
            os.utime(bundles.root / bundle_id / ".eg-bundle.json", (two_hours_ago,) * 2)

        assert await bundles.collect_garbage() == [orphan]
        assert bundles.exists(named)
    finally:
        await gateway.stop()
