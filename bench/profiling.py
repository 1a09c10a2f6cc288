"""``--profile``: py-spy samples the gateway (and its delivery worker) during a load.

Writes, under ``bench/out/`` (gitignored): ``<name>.svg`` (a flamegraph), ``<name>.txt``
(collapsed stacks, for speedscope or flamegraph.pl) and ``<name>-top.txt`` (the hottest
functions by own time and by total time).
"""

from __future__ import annotations

import collections
import pathlib
import re
import shutil
import subprocess
import sys

from bench.runner import Context

_LINE = re.compile(r":\d+\)$")


def _py_spy() -> str | None:
    beside = pathlib.Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(ctx: Context, pid: int, seconds: float, name: str) -> list[subprocess.Popen[bytes]]:
    """Attach py-spy to ``pid`` and its children for ``seconds``; [] when it is missing."""
    binary = _py_spy()
    if binary is None:
        print("  (profile skipped: py-spy is not installed — pip install -e '.[bench]')")
        return []
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    common = [binary, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    common += ["--duration", str(max(1, round(seconds))), "--rate", "250"]
    spies = []
    for fmt, suffix in (("flamegraph", ".svg"), ("raw", ".txt")):
        out = ctx.profile_dir / f"{name}{suffix}"
        args = [*common, "--format", fmt, "--output", str(out)]
        spies.append(ctx.owner.spawn(args, f"py-spy-{fmt}", ctx.cores.load))
    return spies


def finish(ctx: Context, spies: list[subprocess.Popen[bytes]], name: str) -> list[str]:
    """Wait for py-spy (bounded) and summarise the collapsed stacks; returns the top lines."""
    for spy in spies:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            pass
        ctx.owner.stop(spy)
    raw = ctx.profile_dir / f"{name}.txt"
    if not spies or not raw.exists():
        return []
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(")", frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples of the gateway process tree (py-spy, 250 Hz)", ""]
    lines.append("own time (where the CPU is):")
    lines += [f"  {n / samples:6.1%}  {frame}" for frame, n in own.most_common(25)]
    lines += ["", "total time (own + callees):"]
    lines += [f"  {n / samples:6.1%}  {frame}" for frame, n in total.most_common(40)]
    (ctx.profile_dir / f"{name}-top.txt").write_text("\n".join(lines) + "\n")
    return lines[3:8]
