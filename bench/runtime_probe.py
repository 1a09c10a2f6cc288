"""Latency probe for the local function runtime (not a test).

Prints, for a no-op handler:

* warm ``FunctionRuntime.invoke()`` round trips (parent side, p50/p99 over N calls), Python
  and Node.js, next to calling the same Python function in-process (plain call, and with
  the JSON decode/encode an invocation implies);
* cold starts: spawn to ready (the REPORT's ``Init Duration``) and the whole first call.

    .venv/bin/python -m bench.runtime_probe [--calls 500] [--cold 20] [--uvloop] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eventgateway.runtime.base import LogLine, RuntimeSpec
from eventgateway.runtime.pool import FunctionRuntime

_PY = "def handler(event, context):\n    return None\n"
_JS = "exports.handler = async () => null;\n"
_EVENT = json.dumps(
    {
        "eventType": "user.created",
        "eventID": "b3bd9de2-4e43-4b94-8d1b-53c1b1d6e2d1",
        "cloudEventsVersion": "0.1",
        "source": "/services/users",
        "contentType": "application/json",
        "data": {"username": "tester", "email": "test@testcorp.com"},
    }
).encode()


class CountingSink:
    """Counts lines; the cheapest sink, so the figures are the runtime's own."""

    def __init__(self) -> None:
        self.count = 0

    def append(self, lines: Sequence[LogLine]) -> None:
        self.count += len(lines)


def _spec(bundle: pathlib.Path, language: str, handler: str, function_id: str) -> RuntimeSpec:
    return RuntimeSpec(
        space="bench",
        function_id=function_id,
        language=language,  # type: ignore[arg-type]
        runtime="nodejs20.x" if language == "nodejs" else "python3.11",
        bundle_id=f"{language}-noop",
        bundle_dir=bundle,
        handler=handler,
        memory_mb=256,
        timeout_s=10.0,
        concurrency=1,
    )


def stats_ms(samples_ms: list[float]) -> dict[str, float]:
    samples = sorted(samples_ms)
    return {
        "p50": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "n": float(len(samples)),
    }


def _summary(label: str, samples_ms: list[float], quiet: bool = False) -> dict[str, float]:
    stats = stats_ms(samples_ms)
    p50, p99 = stats["p50"], stats["p99"]
    if p50 >= 10:
        figures = f"p50 {p50:8.1f} ms   p99 {p99:8.1f} ms"
    else:
        figures = f"p50 {p50 * 1000:8.1f} µs   p99 {p99 * 1000:8.1f} µs"
    if not quiet:
        print(f"{label:<52} {figures}   (n={len(samples_ms)})")
    return stats


async def _timed(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def warm(
    runtime: FunctionRuntime, spec: RuntimeSpec, calls: int, quiet: bool = False
) -> dict[str, float]:
    first = await runtime.invoke(spec, _EVENT)
    assert first.ok, first.payload
    for _ in range(20):  # let caches and the allocator settle
        await runtime.invoke(spec, _EVENT)
    samples = await _timed(lambda: runtime.invoke(spec, _EVENT), calls)
    return _summary(f"warm invoke(), {spec.language}", samples, quiet)


def in_process(calls: int, quiet: bool = False) -> dict[str, dict[str, float]]:
    namespace: dict[str, object] = {}
    exec(compile(_PY, "handler.py", "exec"), namespace)
    handler = namespace["handler"]
    assert callable(handler)
    plain, with_json = [], []
    for _ in range(calls):
        started = time.perf_counter()
        handler({}, None)
        plain.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        json.dumps(handler(json.loads(_EVENT), None)).encode()
        with_json.append((time.perf_counter() - started) * 1000)
    return {
        "plain": _summary("in-process call, python", plain, quiet),
        "json": _summary("in-process call + JSON decode/encode, python", with_json, quiet),
    }


async def cold(
    runtime: FunctionRuntime,
    bundle: pathlib.Path,
    language: str,
    handler: str,
    n: int,
    quiet: bool = False,
) -> dict[str, dict[str, float]]:
    init, total = [], []
    for i in range(n):
        spec = _spec(bundle, language, handler, f"cold-{language}-{i}")  # a new pool each time
        started = time.perf_counter()
        result = await runtime.invoke(spec, _EVENT)
        total.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.payload
        assert result.init_duration_ms is not None
        init.append(result.init_duration_ms)
    return {
        "init": _summary(f"cold start: spawn → ready (Init Duration), {language}", init, quiet),
        "first": _summary(f"cold start: first invoke() round trip, {language}", total, quiet),
    }


async def measure(calls: int, cold_starts: int, quiet: bool = False) -> dict[str, Any]:
    """Every figure of the probe, as a dict (bench/__main__.py reports it)."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="eg-runtime-probe-") as tmp:
        bundle = pathlib.Path(tmp)
        (bundle / "handler.py").write_text(_PY)
        (bundle / "index.js").write_text(_JS)
        sink = CountingSink()
        runtime = FunctionRuntime(sink)
        node = shutil.which("node") is not None
        try:
            results["in_process"] = in_process(calls, quiet)
            py_spec = _spec(bundle, "python", "handler.handler", "warm-py")
            results["warm_python"] = await warm(runtime, py_spec, calls, quiet)
            if node:
                js_spec = _spec(bundle, "nodejs", "index.handler", "warm-js")
                results["warm_nodejs"] = await warm(runtime, js_spec, calls, quiet)
            results["cold_python"] = await cold(
                runtime, bundle, "python", "handler.handler", cold_starts, quiet
            )
            if node:
                results["cold_nodejs"] = await cold(
                    runtime, bundle, "nodejs", "index.handler", cold_starts, quiet
                )
        finally:
            await runtime.close()
        if not quiet:
            print(f"({sink.count:,} log lines)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--cold", type=int, default=20)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    figures = asyncio.run(measure(args.calls, args.cold, quiet=args.json))
    if args.json:
        print(json.dumps(figures))
