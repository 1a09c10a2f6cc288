"""FunctionRuntime's pools: warm reuse, concurrency, redeploys, idle reaping, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal

import pytest

from eventgateway.errors import ProviderError
from eventgateway.runtime.pool import FunctionRuntime
from tests.runtime.conftest import HANDLERS, event, make_spec, process_exists, wait_until


def hold(seconds: float) -> bytes:
    return event({"seconds": seconds})


async def test_the_first_call_is_cold_and_the_next_ones_are_warm(runtime):
    spec = make_spec("probe.echo")

    results = [await runtime.invoke(spec, event()) for _ in range(3)]

    assert [r.init_duration_ms is not None for r in results] == [True, False, False]
    assert results[0].init_duration_ms > 0  # type: ignore[operator]
    assert len({json.loads(r.payload)["pid"] for r in results}) == 1
    assert len({r.request_id for r in results}) == 3


async def test_concurrent_calls_run_in_parallel_on_distinct_workers(runtime):
    spec = make_spec("probe.hold", concurrency=4)

    results = await asyncio.gather(*(runtime.invoke(spec, hold(0.3)) for _ in range(4)))

    pids = {json.loads(r.payload)["pid"] for r in results}
    assert len(pids) == 4
    assert all(r.init_duration_ms is not None for r in results)


async def test_calls_beyond_the_concurrency_wait_for_a_free_worker(runtime):
    spec = make_spec("probe.hold", concurrency=2, timeout_s=5.0)

    results = await asyncio.gather(*(runtime.invoke(spec, hold(0.2)) for _ in range(5)))

    assert all(r.ok for r in results)
    assert len({json.loads(r.payload)["pid"] for r in results}) == 2
    assert sum(r.init_duration_ms is not None for r in results) == 2


async def test_each_function_gets_its_own_workers(runtime):
    a = await runtime.invoke(make_spec("probe.echo", function_id="a"), event())
    b = await runtime.invoke(make_spec("probe.echo", function_id="b"), event())

    assert json.loads(a.payload)["pid"] != json.loads(b.payload)["pid"]


async def test_a_redeploy_swaps_workers_while_running_calls_finish_on_the_old_code(runtime):
    old = make_spec("app.handler", bundle="redeploy_v1", bundle_id="v1")
    new = make_spec("app.handler", bundle="redeploy_v2", bundle_id="v2")
    running = [asyncio.create_task(runtime.invoke(old, hold(0.5))) for _ in range(2)]
    await wait_until(lambda: len(_pids(runtime, "v1")) == 2)
    old_pids = _pids(runtime, "v1")

    swapped = await runtime.invoke(new, hold(0))
    finished = await asyncio.gather(*running)

    assert json.loads(swapped.payload)["version"] == 2
    assert [json.loads(r.payload)["version"] for r in finished] == [1, 1]
    assert {json.loads(r.payload)["pid"] for r in finished} == old_pids
    assert json.loads(swapped.payload)["pid"] not in old_pids
    # The old pool is drained and stopped; the new one stays warm.
    await wait_until(lambda: not any(process_exists(pid) for pid in old_pids))
    assert _pools(runtime, "v1") == []
    again = await runtime.invoke(new, hold(0))
    assert again.init_duration_ms is None


async def test_an_idle_old_pool_stops_at_once_on_redeploy(runtime):
    old = make_spec("app.handler", bundle="redeploy_v1", bundle_id="v1")
    old_pid = json.loads((await runtime.invoke(old, hold(0))).payload)["pid"]

    await runtime.invoke(make_spec("app.handler", bundle="redeploy_v2", bundle_id="v2"), hold(0))

    await wait_until(lambda: not process_exists(old_pid))


async def test_a_removed_functions_idle_workers_stop_at_once(runtime):
    # QA: after `eg remove`, its warm workers (412 MB each there) ran on for idle_s (5 min).
    removed = make_spec("probe.echo", function_id="removed")
    kept = make_spec("probe.echo", function_id="kept")
    removed_pid = json.loads((await runtime.invoke(removed, event())).payload)["pid"]
    kept_pid = json.loads((await runtime.invoke(kept, event())).payload)["pid"]

    runtime.retire_stale(lambda spec: spec.function_id == "kept")

    await wait_until(lambda: not process_exists(removed_pid))
    assert process_exists(kept_pid)
    again = await runtime.invoke(removed, event())  # made again: a new pool, a new worker
    assert json.loads(again.payload)["pid"] != removed_pid


async def test_an_idle_pool_is_reaped_by_its_timer(runtime_factory):
    runtime: FunctionRuntime = runtime_factory(idle_s=0.5)
    spec = make_spec("probe.echo")
    first = await runtime.invoke(spec, event())
    pid = json.loads(first.payload)["pid"]
    assert process_exists(pid)

    await wait_until(lambda: not process_exists(pid), timeout_s=5.0)

    again = await runtime.invoke(spec, event())
    assert again.init_duration_ms is not None
    assert json.loads(again.payload)["pid"] != pid


async def test_use_restarts_the_idle_timer(runtime_factory):
    runtime: FunctionRuntime = runtime_factory(idle_s=0.5)
    spec = make_spec("probe.hold")

    # Four calls of 0.3 s back to back: 1.2 s in all, but never 0.5 s idle.
    results = [await runtime.invoke(spec, hold(0.3)) for _ in range(4)]

    assert len({json.loads(r.payload)["pid"] for r in results}) == 1


async def test_a_worker_killed_while_idle_is_replaced(runtime):
    spec = make_spec("probe.echo")
    pid = json.loads((await runtime.invoke(spec, event())).payload)["pid"]
    os.kill(pid, signal.SIGKILL)
    (worker,) = [w for pool in _pools(runtime, spec.bundle_id) for w in pool.workers]
    await wait_until(lambda: not worker.alive)  # the runtime noticed

    result = await runtime.invoke(spec, event())

    assert result.ok
    assert json.loads(result.payload)["pid"] != pid


async def test_a_cancelled_call_kills_its_worker(runtime, sink):
    spec = make_spec("probe.hold")
    call = asyncio.create_task(runtime.invoke(spec, hold(30)))
    await wait_until(lambda: len(_pids(runtime, spec.bundle_id)) == 1)
    (pid,) = _pids(runtime, spec.bundle_id)

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    await wait_until(lambda: not process_exists(pid))
    assert [line.message.split(" ")[0] for line in sink.lines[-2:]] == ["END", "REPORT"]


async def test_close_stops_every_worker_and_refuses_new_calls(runtime_factory):
    runtime: FunctionRuntime = runtime_factory()
    idle = json.loads((await runtime.invoke(make_spec("probe.echo"), event())).payload)["pid"]
    busy_call = asyncio.create_task(
        runtime.invoke(make_spec("probe.hold", function_id="b"), hold(30))
    )
    await wait_until(lambda: len(_pids(runtime, "python-bundle")) == 2)
    (busy,) = _pids(runtime, "python-bundle") - {idle}

    await asyncio.wait_for(runtime.close(), timeout=5)

    assert not process_exists(idle)
    assert not process_exists(busy)
    assert not (await busy_call).ok
    with pytest.raises(ProviderError, match="shut down"):
        await runtime.invoke(make_spec("probe.echo"), event())


async def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(runtime_factory, tmp_path):
    (tmp_path / "stubborn.py").write_text(
        "import os, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\n"
        "def handler(event, context):\n    return os.getpid()\n"
    )
    runtime: FunctionRuntime = runtime_factory()
    pid = json.loads(
        (await runtime.invoke(make_spec("stubborn.handler", bundle=tmp_path), event())).payload
    )

    await asyncio.wait_for(runtime.close(), timeout=5)

    assert not process_exists(pid)


async def test_without_node_a_nodejs_function_fails_to_start(runtime_factory):
    runtime: FunctionRuntime = runtime_factory(node=None)
    spec = make_spec("index.handler", language="nodejs", bundle="node")

    result = await runtime.invoke(spec, event())

    assert not runtime.node_available
    error = json.loads(result.payload)
    assert error["errorType"] == "Runtime.StartError"
    assert "`node` is not on the gateway's PATH" in error["errorMessage"]


async def test_the_clock_stamps_every_line(runtime_factory, sink):
    runtime: FunctionRuntime = runtime_factory(clock=lambda: 1234.5)

    result = await runtime.invoke(make_spec("handler.handler"), event())

    assert {line.timestamp for line in sink.of(result.request_id)} == {1234.5}
    assert {(line.space, line.function_id) for line in sink.lines} == {("acme-crm", "addUserToCRM")}


def test_handler_fixtures_are_real_files():
    assert (HANDLERS / "python" / "handler.py").is_file()
    assert (HANDLERS / "node" / "index.js").is_file()


# -- peeking at the pools (white box, for structure rather than timing) ----------------------


def _pools(runtime: FunctionRuntime, bundle_id: str):
    return [pool for pool in runtime._pools if pool.spec.bundle_id == bundle_id]


def _pids(runtime: FunctionRuntime, bundle_id: str) -> set[int]:
    return {worker.pid for pool in _pools(runtime, bundle_id) for worker in pool.workers}


async def test_ending_a_space_stops_its_functions_and_nothing_logs_after(runtime, sink):
    # A deleted space's function must not go on logging under the name: a next owner
    # would read it (docs/security.md).
    doomed = make_spec("probe.hold", concurrency=1, timeout_s=30.0)
    other = make_spec("probe.echo", function_id="other")
    elsewhere = dataclasses.replace(make_spec("probe.hold", timeout_s=30.0), space="kept")
    running = asyncio.create_task(runtime.invoke(doomed, hold(30)))
    waiting = asyncio.create_task(runtime.invoke(doomed, hold(30)))  # no free slot
    kept = asyncio.create_task(runtime.invoke(elsewhere, hold(1)))
    await sink.wait_for(lambda: sum(line.message.startswith("START") for line in sink.lines) == 2)
    warm = await runtime.invoke(other, event())

    await asyncio.wait_for(runtime.end_space("acme-crm"), 10)
    logged = sink.count

    assert not (await running).ok  # killed
    with pytest.raises(ProviderError, match="was deleted"):
        await waiting
    assert (await kept).ok  # another space's function is untouched
    after = sink.lines[len(sink.lines) - (sink.count - logged) :]
    assert {line.space for line in after} <= {"kept"}
    again = await runtime.invoke(other, event())  # a function of that name starts afresh
    assert json.loads(again.payload)["pid"] != json.loads(warm.payload)["pid"]
