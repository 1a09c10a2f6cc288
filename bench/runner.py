"""What every figure shares: the run's context, and the two load generators behind one call.

* ``wrk`` (Debian package) for saturating loads when it is installed: ``-t1 -c64`` with
  ``event.lua`` posting unique ~500-byte CloudEvents;
* ``bench.loadgen`` (asyncio, uvloop, httptools) for open-loop fixed rates, batches, and as
  the saturating fallback when ``wrk`` is missing.

Both run as their own process, pinned to the load core when cores are split.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.procs import HERE, ROOT, Cores, Procs, Receiver

LUA = HERE / "event.lua"


@dataclass
class Context:
    """One run of ``python -m bench``: its options and where things go."""

    owner: Procs
    cores: Cores
    seconds: float
    quick: bool
    generator: str  # "wrk" | "asyncio"
    profile: bool
    work: pathlib.Path  # logs and data dirs of this run (removed at the end)
    profile_dir: pathlib.Path
    details: dict[str, Any] = field(default_factory=dict)

    def note(self, figure: str, **values: Any) -> None:
        """Keep a figure's raw numbers for results.json."""
        self.details.setdefault(figure, {}).update(values)


def run_captured(args: list[str], cpus: set[int] | None, timeout_s: float) -> str:
    """Run a command to completion (killed past ``timeout_s``) and return its stdout."""

    def pin_self() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    completed = subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=pin_self,  # safe: the harness runs no threads
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return completed.stdout


def loadgen(
    ctx: Context,
    url: str,
    *,
    rate: float | None = None,
    seconds: float | None = None,
    requests: int | None = None,
    connections: int = 64,
    body: str = "event",
    batch: int = 100,
) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.loadgen", url, "--connections", str(connections)]
    args += ["--body", body, "--batch", str(batch)]
    if rate:
        args += ["--rate", str(rate)]
    if seconds is not None:
        args += ["--seconds", str(seconds)]
    if requests is not None:
        args += ["--requests", str(requests)]
    out = run_captured(args, ctx.cores.load, timeout_s=(seconds or 0) + 120)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    shape = "open loop" if rate else "closed loop"
    result["generator"] = f"bench.loadgen ({shape}, c{connections})"
    return result


def _duration_s(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def wrk(ctx: Context, url: str, seconds: float, connections: int = 64) -> dict[str, Any]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    out = run_captured([*args, "-s", str(LUA), url], ctx.cores.load, timeout_s=seconds + 60)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    assert total, out
    requests, elapsed = int(total.group(1)), _duration_s(total.group(2), total.group(3))
    non_2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    non_2xx = int(non_2xx_match.group(1)) if non_2xx_match else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def pct(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s|m)", out)
        assert match, out
        return _duration_s(match.group(1), match.group(2)) * 1000

    return {
        "generator": f"wrk -t1 -c{connections}",
        "sent": requests,
        "answered": requests,
        "ok": requests - non_2xx,
        "non_2xx": non_2xx,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "elapsed_s": elapsed,
        "rps": requests / elapsed,
        "ok_rps": (requests - non_2xx) / elapsed,
        "latency_ms": {"p50": pct("50"), "p90": pct("90"), "p99": pct("99")},
    }


def saturate(ctx: Context, url: str, seconds: float, connections: int = 64) -> dict[str, Any]:
    """A closed-loop load at saturation: wrk when chosen and installed, else bench.loadgen."""
    if ctx.generator == "wrk" and shutil.which("wrk"):
        return wrk(ctx, url, seconds, connections)
    return loadgen(ctx, url, seconds=seconds, connections=connections)


def drain(receiver: Receiver, expected: int, timeout_s: float) -> int:
    """Wait (bounded) until the receiver has counted ``expected`` POSTs; return its count."""
    deadline = time.monotonic() + timeout_s
    count = receiver.count()
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.05)  # the receiver is another process: polling its counter, bounded
        count = receiver.count()
    return count
