"""``RESULTS.md`` and ``results.json``: the machine, the command, every row, the details."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from typing import Any

from bench.rows import Row

_PACKAGES = ("eventgateway", "uvloop", "msgspec", "aiohttp", "uvicorn", "httptools", "nats-py")


def _tool_version(args: list[str]) -> str:
    if shutil.which(args[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    version = re.search(r"(\d+\.\d+[\w.+-]*)", done.stdout + done.stderr)
    return version.group(1) if version else "unknown"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    versions = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["wrk"] = _tool_version(["wrk", "-v"])
    versions["nats-server"] = _tool_version(["nats-server", "--version"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "versions": versions,
    }


def loadavg() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def host_speed_s() -> float:
    """Seconds a pure-Python loop of 10 million steps takes now: on a shared host this
    moves with the neighbours (0.3 s on a quiet machine of this kind, 0.6 s in slow
    spells), and every figure and floor moves with it."""
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return round(time.perf_counter() - started, 3)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value * 1000:.1f} µs" if abs(value) < 0.1 else f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:,.0f} {unit}"


def _mark(row: Row) -> str:
    return {True: "✓", False: "✗", None: "—"}[row.passed]


def table(rows: list[Row]) -> str:
    lines = [
        "| figure | value | floor (same run) | × floor | target | met | notes |",
        "|---|---:|---|---:|---|:-:|---|",
    ]
    for row in rows:
        floor = f"{_number(row.floor, row.unit)} — {row.floor_label}"
        if row.floor is None:
            floor = row.floor_label
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "—"
        value = _number(row.value, row.unit)
        lines.append(
            f"| {row.figure} | {value} | {floor} | {ratio} | {row.target} | {_mark(row)} "
            f"| {row.note} |"
        )
    return "\n".join(lines)


def _generators(details: dict[str, Any]) -> list[str]:
    found = details.get("generators")
    if not found:
        return ["(not run)"]
    lines = [
        "| generator | ceiling against bench/canned.py (req/s) | p50 / p99 ms |",
        "|---|---:|---|",
    ]
    for name, run in found.items():
        lat = run["latency_ms"]
        lines.append(
            f"| {name}: {run['generator']} | {run['ok_rps']:,.0f} "
            f"| {lat.get('p50', 0):.2f} / {lat.get('p99', 0):.2f} |"
        )
    return lines


def _latency_sweep(details: dict[str, Any]) -> list[str]:
    sweep = details.get("latency")
    if not sweep:
        return ["(not run)"]
    lines = [
        "| offered ev/s | gateway p50 / p90 / p99 ms | direct p50 / p90 / p99 ms "
        "| delivered / accepted | 202 p99 ms |",
        "|---:|---|---|---|---:|",
    ]
    for point, floor in zip(sweep["sqlite"], sweep["floor"], strict=True):
        g, f = point["emit_to_delivery_ms"], floor["emit_to_delivery_ms"]
        lines.append(
            f"| {point['offered_rate']:,} | {g.get('p50', 0):.2f} / {g.get('p90', 0):.2f} / "
            f"{g.get('p99', 0):.2f} | {f.get('p50', 0):.2f} / {f.get('p90', 0):.2f} / "
            f"{f.get('p99', 0):.2f} | {point['delivered']:,} / {point['accepted']:,} "
            f"| {point['response_ms'].get('p99', 0):.2f} |"
        )
    return lines


def _ladders(details: dict[str, Any]) -> list[str]:
    found = details.get("throughput")
    if not found:
        return ["(not run)"]
    lines = [
        "| subscribers | offered ev/s | accepted ev/s | deliveries/s | kept up |",
        "|---:|---:|---:|---:|:-:|",
    ]
    for ladder in (found["one"], found["fanout"]):
        for step in ladder["steps"]:
            lines.append(
                f"| {ladder['fanout']} | {step['offered_events_per_s']:,} "
                f"| {step['accepted_per_s']:,.0f} | {step['deliveries_per_s']:,.0f} "
                f"| {'✓' if step['kept_up'] else '✗'} |"
            )
    return lines


def markdown(run: dict[str, Any], rows: list[Row]) -> str:
    m = run["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    cores = "\n".join(f"  - {name}: {how}" for name, how in run["cores"].items())
    profile = run.get("profile_top") or []
    parts = [
        "# Benchmark results",
        "",
        "Written by `python -m bench` (`scripts/bench`); do not edit by hand. Every figure is",
        "measured beside its floor in the same run, on the same machine: compare the ratios.",
        "",
        "## Machine and run",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; {m['memory_gib']} GiB; Linux {m['kernel']}",
        f"- Versions: {versions}",
        f"- Command: `{run['command']}`",
        f"- Date: {run['date']}; {run['mode']}",
        f"- Load average before / after: {run['loadavg_before']} / {run['loadavg_after']}; "
        f"host speed (a 10M-step Python loop) before / after: {run.get('speed_before_s')} / "
        f"{run.get('speed_after_s')} s",
        f"- Gateway: `{run['gateway']}` (otherwise defaults: SQLite `synchronous=FULL`, "
        "`--dispatch worker`, auth on, configured with an operator key), on a fresh data dir "
        "per figure",
        "- How the cores were shared:",
        cores,
        "",
        "## Figures",
        "",
        table(rows),
        "",
        "![emit→delivery latency against offered rate](latency.png)",
        "",
        f"*{run['chart_caption']}*",
        "",
        "## Load generators: their own ceiling",
        "",
        *_generators(run["details"]),
        "",
        "## Emit → delivery latency against offered rate (SQLite, at-least-once)",
        "",
        *_latency_sweep(run["details"]),
        "",
        "## Sustained throughput ladders",
        "",
        *_ladders(run["details"]),
        "",
    ]
    if profile:
        parts += ["## Profile (at-least-once ingest, py-spy, own time)", "", "```"]
        parts += [line.strip() for line in profile] + ["```", ""]
    parts += ["Raw numbers: [results.json](results.json). How to run: [README.md](README.md).", ""]
    return "\n".join(parts)


def write(out: pathlib.Path, run: dict[str, Any], rows: list[Row]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.md").write_text(markdown(run, rows))
    document = {**run, "rows": [row.as_dict() for row in rows]}
    (out / "results.json").write_text(json.dumps(document, indent=2, default=str) + "\n")


def started_info(argv: list[str]) -> dict[str, Any]:
    return {
        "machine": machine(),
        "command": " ".join(["python -m bench", *argv]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_before": loadavg(),
        "speed_before_s": host_speed_s(),
        "python": sys.executable,
    }
