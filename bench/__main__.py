"""``python -m bench``: every figure beside its floor, in one run; the table, RESULTS.md,
results.json and latency.png.

    python -m bench                       # the full run (~10 minutes on 2 cores)
    python -m bench --quick               # a short run (1 s per case, fewer rates)
    python -m bench --only ingest --seconds 5
    python -m bench --profile --only ingest   # py-spy on the gateway → bench/out/profile/

Figures (``--only`` names): generators, ingest, latency, throughput, sync, runtime, memory,
nats. A run with ``--only`` or ``--quick`` writes to ``bench/out/`` unless ``--out`` says
otherwise, so the committed ``bench/RESULTS.md`` only ever holds full runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import (
    chart,
    ingest,
    latency,
    natsgateway,
    report,
    resources,
    rows,
    syncroute,
    throughput,
)
from bench.procs import HERE, Cores, procs, serve_flags
from bench.runner import Context, run_captured

# How the cores are shared per figure with --pin auto (see README.md, "Cores").
AUTO_PIN = {
    "generators": "split",
    "ingest": "split",
    "latency": "split",
    # The fan-out ladder's bottleneck is the delivery worker: it gets a core alone (the
    # one-subscriber ladder runs unpinned, throughput.py).
    "throughput": "worker",
    "sync": "split",
    "runtime": "none",
    "memory": "none",
    "nats": "none",
}


def _generators(ctx: Context) -> dict[str, Any]:
    found = ingest.ceilings(ctx)
    ctx.note("generators", **found)
    return found


def _nats(ctx: Context) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.natsfloor", "--seconds", str(ctx.seconds)]
    found: dict[str, Any] = json.loads(run_captured(args, ctx.cores.load, 120).splitlines()[-1])
    # The floor and the gateway on NATS are apart: one failing keeps the other's figures.
    try:
        found["gateway"] = natsgateway.measure(ctx)
    except Exception as exc:
        traceback.print_exc()
        found["gateway"] = {"error": f"{type(exc).__name__}: {exc}"}
    ctx.note("nats", **found)
    return found


FIGURES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "generators": _generators,
    "ingest": ingest.measure,
    "latency": latency.measure,
    "throughput": throughput.measure,
    "sync": syncroute.measure,
    "runtime": resources.runtime,
    "memory": resources.memory,
    "nats": _nats,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: 1 s per case")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per case")
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), help="repeatable")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="where reports go")
    parser.add_argument("--profile", action="store_true", help="py-spy the at-least-once ingest")
    parser.add_argument(
        "--pin", choices=["auto", "split", "worker", "none"], default="auto", help="core sharing"
    )
    parser.add_argument(
        "--generator",
        choices=["wrk", "asyncio"],
        default="wrk" if shutil.which("wrk") else "asyncio",
        help="saturating load generator (default: wrk when installed)",
    )
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 10.0
    if args.out is None:  # only a full run replaces the committed bench/RESULTS.md
        args.out = HERE / "out" if args.only or args.quick else HERE
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    run = report.started_info(argv)
    run["mode"] = (
        f"{'quick' if args.quick else 'full'} run, {args.seconds:g} s per case, "
        f"saturating generator: {args.generator}"
    )
    run["gateway"] = " ".join(["eg serve", *serve_flags()])
    work = pathlib.Path(tempfile.mkdtemp(prefix="eg-bench-"))
    selected = args.only or list(FIGURES)
    results: dict[str, Any] = {}
    failed = False
    cores_used: dict[str, str] = {}
    with procs(work) as owner:
        ctx = Context(
            owner=owner,
            cores=Cores(),
            seconds=args.seconds,
            quick=args.quick,
            generator=args.generator,
            profile=args.profile,
            work=work,
            profile_dir=HERE / "out" / "profile",
        )
        for name in selected:
            ctx.cores = Cores(AUTO_PIN[name] if args.pin == "auto" else args.pin)
            cores_used[name] = ctx.cores.describe()
            started = time.monotonic()
            print(f"== {name} ({ctx.cores.mode})", flush=True)
            try:
                results[name] = FIGURES[name](ctx)
                if isinstance(results[name], dict) and "cores" in results[name]:
                    cores_used[name] = results[name]["cores"]  # it shared them per part
            except Exception as exc:  # one failing figure must not lose the others
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                failed = True
            print(f"   {time.monotonic() - started:.1f} s", flush=True)
    table_rows = rows.build(results)
    run.update(
        loadavg_after=report.loadavg(),
        speed_after_s=report.host_speed_s(),
        cores=cores_used,
        details=ctx.details,
        profile_top=(ctx.details.get("ingest", {}).get("at-least-once") or {}).get("profile_top"),
        chart_caption=chart.draw(
            ctx.details.get("latency"),
            (ctx.details.get("nats", {}).get("gateway") or {}).get("latency"),
            args.out / "latency.png",
        ),
    )
    report.write(args.out, run, table_rows)
    print()
    print(report.table(table_rows))
    print(f"\nWrote {args.out / 'RESULTS.md'}, results.json and latency.png")
    if failed:
        print(f"Logs of the run's processes: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
