"""LocalRuntime.space_ended: what the app calls when any instance deleted a space."""

from __future__ import annotations

import asyncio

from eventgateway.runtime.service import LocalRuntime


async def test_space_ended_ends_the_spaces_tails_and_stops_its_functions() -> None:
    runtime = LocalRuntime(None)
    stopped: list[str] = []
    stopping = asyncio.Event()

    async def end_space(space: str) -> None:
        stopped.append(space)
        stopping.set()

    runtime.functions.end_space = end_space  # type: ignore[method-assign]
    try:
        doomed = runtime.logs.tail("acme", "fn")
        kept = runtime.logs.tail("other", "fn")

        runtime.space_ended("acme")

        async with asyncio.timeout(5):
            assert [line async for line in doomed] == []
            await stopping.wait()  # the stop runs as a task of its own
        assert stopped == ["acme"]
        assert runtime.logs.tail_count("other", "fn") == 1
        await kept.aclose()
    finally:
        await runtime.close()
