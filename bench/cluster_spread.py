"""How a slow function's backlog spreads over the instances of a cluster (NATS JetStream).

Starts N ``eg serve`` instances in cluster mode on one fresh NATS prefix, deploys one
local-runtime Python function (it sleeps S s; ``concurrency`` C) with one async
subscription, emits E events spread evenly over T s (round-robin over the instances'
Events APIs, or all to one), waits until every event ran (or a deadline), and prints the
spread: calls per instance, wall time against the ideal E*S/(N*C), duplicates,
undelivered. See docs/cluster.md, "A blocked backlog is shared with instances that have
room for it".

    .venv/bin/python -m bench.cluster_spread                  # 3 instances, 60 events over 5 s
    .venv/bin/python -m bench.cluster_spread --batch 60       # the 60 events in one request
    .venv/bin/python -m bench.cluster_spread -n 2 -e 20 -s 1 -c 2 --json out.json

Needs a NATS server with JetStream (``--nats``, default nats://127.0.0.1:4222). ``--src
DIR`` runs the gateway from another source tree (``PYTHONPATH=DIR``, e.g. a ``git archive
HEAD src | tar -x -C /tmp/x`` export) to compare builds; the run prints a hash of the
package it ran. Which instance ran a call: each instance extracts the bundle under its own
data dir, so the handler's ``__file__`` names it. Everything goes to 127.0.0.1; every
process started is stopped by PID and the prefix's streams are deleted, whatever happens.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import pathlib
import shutil
import signal
import tempfile
import threading
import time
import zipfile
from types import FrameType
from typing import Any

from bench import cluster, natsgateway
from bench.cluster import Instance, request

SPACE = "spread"
EVENT_TYPE = "spread.tick"
FUNCTION = "sleeper"
HANDLER = r"""
import os, time, json
OUT = os.environ["SPREAD_OUT"]
HERE = os.path.abspath(__file__)

def handler(event, context):
    start = time.time()
    time.sleep(float(os.environ["SPREAD_SLEEP"]))
    end = time.time()
    line = json.dumps({"file": HERE, "pid": os.getpid(), "ppid": os.getppid(),
                       "id": event.get("id"), "start": start, "end": end}) + "\n"
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return {"ok": True}
"""


def deploy(insts: list[Instance], calls_file: pathlib.Path, sleep_s: float, conc: int) -> None:
    """The function, its event type and subscription; waits until every instance sees it."""
    base = insts[0].config + f"/v1/spaces/{SPACE}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as bundle:
        bundle.writestr("handler.py", HANDLER)
    code, body = request("POST", base + "/bundles", buf.getvalue(), "application/zip", 60)
    if code not in (200, 201):
        raise RuntimeError(f"bundle upload: {code} {body[:300]!r}")
    env = {"SPREAD_OUT": str(calls_file), "SPREAD_SLEEP": str(sleep_s)}
    provider = {"bundle": json.loads(body)["bundleId"], "handler": "handler.handler"}
    provider.update(concurrency=conc, timeout=max(6, int(sleep_s * 2 + 5)), environment=env)
    subscription = {"type": "async", "eventType": EVENT_TYPE, "functionId": FUNCTION}
    for path, payload in (
        ("/functions", {"functionId": FUNCTION, "type": "python", "provider": provider}),
        ("/eventtypes", {"name": EVENT_TYPE}),
        ("/subscriptions", {**subscription, "path": f"/{SPACE}/"}),
    ):
        code, body = request("POST", base + path, json.dumps(payload).encode())
        if code != 201:
            raise RuntimeError(f"POST {path}: {code} {body[:300]!r}")
    deadline = time.monotonic() + 20
    for inst in insts:
        while True:
            code, body = request("GET", inst.config + f"/v1/spaces/{SPACE}/subscriptions")
            if code == 200 and json.loads(body).get("subscriptions"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst.name} never saw the subscription")
            time.sleep(0.2)  # another process's config watch: nothing to wait on but polling


def cloud_event(i: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ev-{i:05d}",
        "source": "/spread",
        "type": EVENT_TYPE,
        "data": {"i": i},
    }


def emit_all(
    insts: list[Instance], events: int, spread_s: float, emit_to: str, batch: int
) -> tuple[float, dict[str, int], dict[str, float], list[str]]:
    """Send request j (events j*K .. j*K+K-1, K = ``batch``) at t0 + j*T/requests to
    instance j % N (or ``emit_to``). Returns t0, {id: instance}, {id: accepted at},
    failures."""
    target: dict[str, int] = {}
    accepted_at: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()
    requests = -(-events // batch)
    t0 = time.time() + 0.2
    step = spread_s / requests

    def one(j: int) -> None:
        inst = insts[j % len(insts)] if emit_to == "rr" else insts[int(emit_to)]
        idx = range(j * batch, min(events, (j + 1) * batch))
        ids = [f"ev-{i:05d}" for i in idx]
        if batch == 1:
            body, ctype = json.dumps(cloud_event(idx[0])), "application/cloudevents+json"
        else:
            body = json.dumps([cloud_event(i) for i in idx])
            ctype = "application/cloudevents-batch+json"
        time.sleep(max(0.0, t0 + j * step - time.time()))  # the open-loop schedule
        last = None
        for _ in range(5):
            try:
                code, resp = request("POST", inst.events + f"/{SPACE}/", body.encode(), ctype)
            except OSError as exc:
                code, resp = 0, repr(exc).encode()
            if code == 202:
                now = time.time()
                with lock:
                    target.update(dict.fromkeys(ids, inst.idx))
                    accepted_at.update(dict.fromkeys(ids, now))
                return
            last = f"{code} {resp[:120]!r}"
            time.sleep(0.5)
        with lock:
            failures.append(f"{ids[0]}..(x{len(ids)})->{inst.name}: {last}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, range(requests)))
    return t0, target, accepted_at, failures


def read_calls(calls_file: pathlib.Path) -> list[dict[str, Any]]:
    if not calls_file.exists():
        return []
    calls = []
    for line in calls_file.read_text().splitlines():
        try:
            calls.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return calls


def wait_done(
    insts: list[Instance], calls_file: pathlib.Path, accepted: set[str], t0: float, wait_s: float
) -> None:
    """Until every accepted event ran or ``wait_s`` passed; progress every 10 s."""
    deadline = time.time() + wait_s
    next_report = time.time() + 10
    while time.time() < deadline:
        for inst in insts:
            inst.remember_pids()
        done = {c["id"] for c in read_calls(calls_file)}
        if accepted <= done:
            return
        if time.time() >= next_report:
            print(f"  t+{time.time() - t0:5.1f}s  {len(done & accepted)}/{len(accepted)} done")
            next_report += 10
        time.sleep(0.25)  # the handlers run in other processes: polling their file, bounded


def peak_concurrency(calls: list[dict[str, Any]]) -> int:
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


def report(
    a: argparse.Namespace,
    insts: list[Instance],
    calls: list[dict[str, Any]],
    sent: tuple[float, dict[str, int], dict[str, float], list[str]],
    ideal: float,
) -> dict[str, Any]:
    """Print the spread; return it for ``--json``."""
    t0, target, accepted_at, failures = sent
    per: dict[int, list[dict[str, Any]]] = {inst.idx: [] for inst in insts}
    unknown: list[dict[str, Any]] = []
    for call in calls:
        owner = [i.idx for i in insts if call["file"].startswith(f"{i.data_dir}{os.sep}")]
        (per[owner[0]] if owner else unknown).append(call)
    counts: dict[str, int] = {}
    for call in calls:
        counts[call["id"]] = counts.get(call["id"], 0) + 1
    dups = {k: v for k, v in counts.items() if v > 1}
    missing = sorted(set(target) - set(counts))
    last_end = max((c["end"] for c in calls), default=float("nan"))
    wall = last_end - t0
    print(
        f"\nwall time (first emit -> last completion): {wall:.1f}s   ideal E*S/(N*C): "
        f"{ideal:.1f}s   ratio {wall / ideal:.2f}"
    )
    ends = {i.name: max((c["end"] for c in per[i.idx]), default=t0) for i in insts}
    idle_tail = {name: round(last_end - end, 1) for name, end in ends.items()}
    print(
        f"lower bound max(ideal, T+S): {max(ideal, a.spread + a.sleep):.1f}s   idle tail per "
        f"instance (last end before the final completion): {idle_tail}"
    )
    shown = f" {dict(list(dups.items())[:10])}" if dups else ""
    print(f"calls: {len(calls)}  distinct events: {len(counts)}  duplicates: {len(dups)}{shown}")
    print(f"not delivered: {len(missing)}" + (f" {missing[:20]}" if missing else ""))
    print(
        "per instance: calls | emitted-to | first start .. last end (s after first emit) | "
        "max concurrent | run here but emitted elsewhere"
    )
    per_counts: dict[str, int] = {}
    for inst in insts:
        runs = per[inst.idx]
        per_counts[inst.name] = len(runs)
        emitted_to = sum(1 for v in target.values() if v == inst.idx)
        foreign = sum(1 for c in runs if target.get(c["id"]) not in (None, inst.idx))
        first = min((c["start"] for c in runs), default=None)
        span = (
            f"{first - t0:6.1f} .. {ends[inst.name] - t0:6.1f}"
            if first is not None
            else "     -  ..      - "
        )
        print(
            f"  {inst.name} (:{inst.events_port})  {len(runs):4d} | {emitted_to:4d} | {span} | "
            f"{peak_concurrency(runs)} | {foreign}"
        )
    if unknown:
        print(f"  unattributed calls: {len(unknown)} e.g. {unknown[0]['file']}")
    pct: dict[int, float] = {}
    if calls:
        latencies = sorted(c["end"] - accepted_at.get(c["id"], t0) for c in calls)
        for q in (50, 90, 100):
            pct[q] = latencies[min(len(latencies) - 1, len(latencies) * q // 100)]
        shown = " / ".join(f"{pct[q]:.1f}s" for q in (50, 90, 100))
        print(f"emit->completion latency p50/p90/max: {shown}")
    return {
        "wall_s": wall,
        "calls": len(calls),
        "per_instance": per_counts,
        "duplicates": dups,
        "missing": missing,
        "emit_failures": failures,
        "unattributed": len(unknown),
        "latency_s": pct,
        "idle_tail_s": idle_tail,
    }


def run(
    a: argparse.Namespace,
    insts: list[Instance],
    prefix: str,
    calls_file: pathlib.Path,
    ideal: float,
    wait_s: float,
) -> tuple[int, dict[str, Any]]:
    """Start, deploy, emit, wait, report. Returns the exit status and the results."""
    reason = natsgateway.unreachable(a.nats)
    if reason is not None:
        raise RuntimeError(reason)
    cluster.start_all(insts, a.nats, prefix, a.src)
    deploy(insts, calls_file, a.sleep, a.concurrency)
    sent = emit_all(insts, a.events, a.spread, a.emit_to, a.batch)
    t0, target, _, failures = sent
    emitted = time.time()
    shown = f"; FAILED {len(failures)}: {failures[:5]}" if failures else ""
    print(f"emitted {len(target)}/{a.events} accepted in {emitted - t0:.2f}s{shown}", flush=True)
    wait_done(insts, calls_file, set(target), t0, wait_s)
    time.sleep(min(a.sleep + 2, 10))  # a short grace to catch duplicates of the last calls
    found = report(a, insts, read_calls(calls_file), sent, ideal)
    return (1 if found["missing"] or failures else 0), found


def options() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--instances", type=int, default=3)
    ap.add_argument("-e", "--events", type=int, default=60)
    ap.add_argument("-t", "--spread", type=float, default=5.0, help="emit over T seconds")
    ap.add_argument("-s", "--sleep", type=float, default=3.0, help="handler sleep, seconds")
    ap.add_argument("-c", "--concurrency", type=int, default=2, help="the function's concurrency")
    ap.add_argument(
        "--deadline",
        type=float,
        help="seconds to wait for deliveries after the last emit "
        "[default: E*S/C + 60, i.e. everything serial on one instance, max 600]",
    )
    ap.add_argument("--nats", default="nats://127.0.0.1:4222", help="the NATS server")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--emit-to", default="rr", help="rr (round-robin, default) or an index")
    ap.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="K",
        help="K events per request (application/cloudevents-batch+json); "
        "the E/K requests are spread over T",
    )
    ap.add_argument("--src", help="run the gateway from this source dir (PYTHONPATH)")
    ap.add_argument(
        "--keep-logs", action="store_true", help="keep the work dir (logs, calls, data dirs)"
    )
    a = ap.parse_args()
    if a.instances < 1 or a.events < 1 or a.batch < 1 or a.concurrency < 1 or a.sleep <= 0:
        ap.error("-n, -e, -c and --batch must be at least 1, -s above 0")
    if a.emit_to != "rr" and not (a.emit_to.isdigit() and int(a.emit_to) < a.instances):
        ap.error(f"--emit-to must be rr or an index below {a.instances}")
    return a


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    a = options()
    pkg, code_hash = cluster.package_hash(a.src)
    work = pathlib.Path(tempfile.mkdtemp(prefix="eg-cluster-spread-"))
    prefix = cluster.fresh_prefix()
    calls_file = work / "calls.jsonl"
    ideal = a.events * a.sleep / (a.instances * a.concurrency)
    serial = min(600.0, a.events * a.sleep / a.concurrency + 60)  # all of it on one instance
    wait_s = a.deadline if a.deadline is not None else serial
    print(f"run {work}  prefix {prefix}  code {pkg} sha256:{code_hash}")
    print(
        f"params N={a.instances} E={a.events} T={a.spread}s S={a.sleep}s C={a.concurrency} "
        f"emit-to={a.emit_to} batch={a.batch}  ideal={ideal:.1f}s  "
        f"deadline={wait_s:.0f}s after last emit",
        flush=True,
    )
    insts = cluster.plan(a.instances, work)
    result: dict[str, Any] = {"code": pkg, "code_hash": code_hash, "params": vars(a)}
    result.update(prefix=prefix, run_dir=str(work), ideal_s=ideal)
    rc = 2
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rc, found = run(a, insts, prefix, calls_file, ideal, wait_s)
        result.update(found)
    except KeyboardInterrupt:
        rc = 130
        print("interrupted: cleaning up", flush=True)
    except Exception as exc:  # report it, then clean up
        print(f"ERROR: {exc!r}", flush=True)
        for inst in insts:
            if inst.log_tail():
                print(f"--- {inst.name}'s log, last lines:\n{inst.log_tail()}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        killed = cluster.stop_all(insts)
        exits = {i.name: (i.proc.returncode if i.proc else None) for i in insts}
        shown = f"; SIGKILLed leftovers {killed}" if killed else ""
        print(f"stopped: exit codes {exits}{shown}")
        left = cluster.leftovers(insts)
        if left:
            print(f"WARNING: still alive: {left}")
        try:
            if any(i.proc for i in insts):  # else nothing was created (or no server answers)
                print(f"deleted streams: {sorted(cluster.delete_streams(a.nats, prefix))}")
        except Exception as exc:
            print(f"WARNING: deleting the streams of {prefix} failed: {exc!r}")
        result.update(killed=killed, left=left, exit_codes=exits)
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(result, indent=1, default=str))
        if a.keep_logs:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
