"""A worker is a sandbox: when it ends, for whatever reason, what its handler started ends
with it; a broken or forged answer fails the call; nothing escapes the runtime."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import sys

import pytest

from eventgateway.runtime.worker_process import WorkerProcess
from tests.runtime.conftest import (
    event,
    make_spec,
    process_exists,
    requires_node,
    wait_until,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def error_type(payload: bytes) -> object:
    return json.loads(payload)["errorType"]


def kill_all(pids: list[int]) -> None:
    for pid in pids:  # only if the test failed: these are the processes it started
        if process_exists(pid):
            os.kill(pid, signal.SIGKILL)


async def test_a_child_that_ignores_sigterm_dies_with_its_stopped_worker(runtime):
    result = await runtime.invoke(make_spec("probe.child_ignoring_sigterm"), event())
    assert result.ok, result.payload
    pids = json.loads(result.payload)
    try:
        await asyncio.wait_for(runtime.close(), 10)

        await wait_until(lambda: not process_exists(pids["child"]))
        assert not process_exists(pids["worker"])
    finally:
        kill_all([pids["child"], pids["worker"]])


@pytest.mark.parametrize(
    "handler", ["probe.child_then_exit", "probe.fork_then_exit", "probe.setsid_fork_then_exit"]
)
async def test_a_worker_that_dies_takes_its_children_and_the_death_is_seen_at_once(
    runtime, sink, handler
):
    # A forked copy holds the result pipe: unless it dies too, the crash reads as a timeout.
    result = await runtime.invoke(make_spec(handler, timeout_s=60.0), event())
    children = [
        int(message.split()[1])
        for message in sink.messages(result.request_id)
        if message.startswith("child ")
    ]
    try:
        assert error_type(result.payload) == "Runtime.ExitError"
        assert len(children) == 1
        if handler != "probe.setsid_fork_then_exit":  # out of the group: left to itself
            await wait_until(lambda: not process_exists(children[0]))
    finally:
        kill_all(children)


@pytest.mark.parametrize(
    "figures",
    [
        {"duration_ms": 1.0, "max_memory_used_mb": "lots"},
        {"duration_ms": "slow", "max_memory_used_mb": 1},
        {"duration_ms": 1.0, "max_memory_used_mb": 1, "retire": "no"},
        {"duration_ms": 1.0, "max_memory_used_mb": 1, "ok": "yes"},
    ],
)
async def test_a_forged_result_frame_fails_the_call_and_the_worker_goes(runtime, figures):
    result = await runtime.invoke(make_spec("probe.forge_result"), event(figures))

    assert not result.ok
    assert error_type(result.payload) == "Runtime.ExitError"
    assert (await runtime.invoke(make_spec("probe.echo"), event())).ok


async def test_an_environment_value_with_a_nul_byte_fails_to_start_not_raises(runtime):
    spec = make_spec("probe.echo", environment={"BROKEN": "a\x00b"})

    result = await runtime.invoke(spec, event())

    assert error_type(result.payload) == "Runtime.StartError"


@pytest.fixture
def gated_spawn(monkeypatch):
    """Holds every worker spawn until ``gate`` is set; ``entered`` says one is waiting."""
    entered, gate = asyncio.Event(), asyncio.Event()
    spawn = WorkerProcess.spawn

    async def held(cls, *args, **kwargs):
        entered.set()
        await gate.wait()
        return await spawn(*args, **kwargs)

    monkeypatch.setattr(WorkerProcess, "spawn", classmethod(held))
    return entered, gate


@pytest.mark.parametrize("ending", ["close", "end_space"])
async def test_a_call_whose_worker_is_being_spawned_is_ended_too(runtime, gated_spawn, ending):
    entered, gate = gated_spawn
    call = asyncio.create_task(runtime.invoke(make_spec("probe.echo"), event()))
    await entered.wait()

    if ending == "close":
        await runtime.close()
    else:
        ended = asyncio.create_task(runtime.end_space("acme-crm"))
    gate.set()
    result = await asyncio.wait_for(call, 10)
    if ending == "end_space":
        await asyncio.wait_for(ended, 10)

    assert not result.ok  # the handler never ran
    assert error_type(result.payload) == "Runtime.ExitError"


# -- the gateway killed with SIGKILL ----------------------------------------------------------

GATEWAY = """
import asyncio, sys
from eventgateway.runtime.pool import FunctionRuntime
from tests.runtime.conftest import event, make_spec

class Sink:
    def append(self, lines):
        pass

async def main(handler, language, bundle, data):
    runtime = FunctionRuntime(Sink())
    spec = make_spec(handler, language=language, bundle=bundle, timeout_s=600.0)
    await runtime.invoke(spec, event(data))
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:4], eval(sys.argv[4])))
"""


@pytest.mark.parametrize(
    ("language", "handler", "thread"),
    [
        ("python", "probe.family_to_file", False),  # mid-call: nobody times it out any more
        ("python", "probe.family_to_file", True),  # idle, with a non-daemon thread running
        ("nodejs", "probe.familyToFile", False),
    ],
)
async def test_a_gateway_killed_with_sigkill_leaves_no_worker_behind(
    tmp_path, language, handler, thread
):
    if language == "nodejs":
        requires_node()
    path = tmp_path / "family"
    data = {"path": str(path), "seconds": 60, "thread": thread}
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    bundle = "node" if language == "nodejs" else "python"
    gateway = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", GATEWAY, handler, language, bundle, repr(data)), cwd=ROOT, env=env
    )
    pids: list[int] = []
    try:
        await wait_until(path.exists, timeout_s=20)
        pids = [int(pid) for pid in path.read_text().split()]
        assert all(process_exists(pid) for pid in pids)

        gateway.kill()
        await gateway.wait()

        await wait_until(lambda: not any(process_exists(pid) for pid in pids), timeout_s=10)
    finally:
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
        kill_all(pids)
