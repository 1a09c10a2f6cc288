"""Fixtures for the local function runtime: a recording sink, specs, and runtimes that close.

Every test runs real worker processes on real handler files under ``handlers/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from eventgateway.runtime.base import LogLine, RuntimeSpec
from eventgateway.runtime.pool import FunctionRuntime

HANDLERS = pathlib.Path(__file__).with_name("handlers")
NODE = shutil.which("node")

USER = {
    "username": "tester",
    "firstname": "Test",
    "lastname": "User",
    "company": "Test Corp, Inc.",
    "email": "test@testcorp.com",
}


def requires_node() -> None:
    """Skip without ``node``, except in CI, where a missing ``node`` is a failure."""
    if NODE is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI (CI=true) but is not on PATH")
        pytest.skip("node is not installed")


class RecordingSink:
    """Keeps the newest ``keep`` lines and counts them all; never blocks.

    ``peak_rss_kib`` samples this (the gateway's) process's resident memory every 1000
    lines, so a test can check that a flood of output does not pile up in the parent.
    """

    def __init__(self, keep: int = 100_000) -> None:
        self.lines: list[LogLine] = []
        self.count = 0
        self.keep = keep
        self.peak_rss_kib = _rss_kib()
        self._changed = asyncio.Event()

    def append(self, lines: Sequence[LogLine]) -> None:
        before = self.count
        self.count += len(lines)
        self.lines.extend(lines)
        if len(self.lines) > self.keep:
            del self.lines[: len(self.lines) - self.keep]
        if self.count // 1000 != before // 1000:
            self.peak_rss_kib = max(self.peak_rss_kib, _rss_kib())
        self._changed.set()

    def of(self, request_id: str) -> list[LogLine]:
        return [line for line in self.lines if line.request_id == request_id]

    def messages(self, request_id: str) -> list[str]:
        return [line.message for line in self.of(request_id)]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for row in status:
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
    return 0


def event(data: Any = None, event_type: str = "user.created") -> bytes:
    """A CloudEvent as the gateway delivers it."""
    return json.dumps(
        {
            "eventType": event_type,
            "eventID": "b3bd9de2-4e43-4b94-8d1b-53c1b1d6e2d1",
            "cloudEventsVersion": "0.1",
            "source": "/services/users",
            "eventTime": "2026-11-26T18:20:07Z",
            "contentType": "application/json",
            "data": USER if data is None else data,
        }
    ).encode()


def make_spec(
    handler: str,
    *,
    language: str = "python",
    bundle: str | pathlib.Path = "python",
    function_id: str = "addUserToCRM",
    **overrides: Any,
) -> RuntimeSpec:
    bundle_dir = bundle if isinstance(bundle, pathlib.Path) else HANDLERS / bundle
    return RuntimeSpec(
        space="acme-crm",
        function_id=function_id,
        language=language,  # type: ignore[arg-type]
        runtime="nodejs20.x" if language == "nodejs" else "python3.11",
        bundle_id=overrides.pop("bundle_id", f"{bundle_dir.name}-bundle"),
        bundle_dir=bundle_dir,
        handler=handler,
        **{"memory_mb": 256, "timeout_s": 10.0, "concurrency": 4, **overrides},
    )


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Re-check ``predicate`` on each loop turn (and every 10 ms) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: it runs nothing and holds no memory.
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def runtime_factory(
    sink: RecordingSink,
) -> AsyncIterator[Callable[..., FunctionRuntime]]:
    """Builds runtimes writing to ``sink``; every one is closed after the test."""
    made: list[FunctionRuntime] = []

    def build(**options: Any) -> FunctionRuntime:
        runtime = FunctionRuntime(options.pop("sink", sink), **options)
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        await runtime.close()


@pytest.fixture
def runtime(runtime_factory: Callable[..., FunctionRuntime]) -> FunctionRuntime:
    return runtime_factory()
