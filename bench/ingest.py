"""Ingest and delivery throughput of `eg serve`, beside a bare ASGI floor, in one run.

For each case: start a receiver (bench/receiver.py) and, unless it is the floor, a gateway
on a fresh data dir with one async subscription to the receiver; drive it with
``wrk -t1 -c64`` posting unique ~500-byte CloudEvents; report accepted events/s, p50/p99,
and how many deliveries the receiver got during the run and after a bounded drain.

Run: ``python -m bench.ingest [--seconds 10] [--quick]``. Needs ``wrk`` (Debian package).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

HERE = pathlib.Path(__file__).parent
LUA = HERE / "event.lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # waiting for a subprocess to listen: no event to wait on
    raise TimeoutError(url)


def post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201, response.status


def receiver_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as response:
        return int(response.read())


@dataclass
class Result:
    case: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    delivered_during: int = 0
    delivered_after: int = 0


def run_wrk(url: str, seconds: float, connections: int = 64) -> Result:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(LUA), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result("", rps, pct("50"), pct("99"), int(non_2xx.group(1)) if non_2xx else 0)


def gateway_case(dispatch: str, delivery: str, seconds: float) -> Result:
    receiver_port, events_port, config_port = free_port(), free_port(), free_port()
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="eg-bench-"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", str(receiver_port)], cwd=HERE.parent
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventgateway",
                "serve",
                "--events-port",
                str(events_port),
                "--config-port",
                str(config_port),
                "--data-dir",
                str(data_dir),
                "--dispatch",
                dispatch,
                "--log-level",
                "warning",
            ],
            cwd=HERE.parent,
        ),
    ]
    try:
        wait_http(f"http://127.0.0.1:{receiver_port}/count")
        config = f"http://127.0.0.1:{config_port}"
        wait_http(config + "/v1/status")
        url = f"http://127.0.0.1:{receiver_port}/f"
        post(
            config + "/v1/spaces/bench/functions",
            {"functionId": "f", "type": "http", "provider": {"url": url}},
        )
        post(config + "/v1/spaces/bench/eventtypes", {"name": "bench.tick"})
        post(
            config + "/v1/spaces/bench/subscriptions",
            {
                "type": "async",
                "eventType": "bench.tick",
                "functionId": "f",
                "path": "/bench",
                "delivery": delivery,
            },
        )
        result = run_wrk(f"http://127.0.0.1:{events_port}/bench", seconds)
        result.case = f"{delivery}, dispatch={dispatch}"
        result.delivered_during = receiver_count(receiver_port)
        deadline = time.monotonic() + 30
        accepted = int(result.rps * seconds)
        while time.monotonic() < deadline and receiver_count(receiver_port) < accepted * 0.99:
            time.sleep(0.2)  # draining the backlog after the load: bounded wait
        result.delivered_after = receiver_count(receiver_port)
        return result
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def floor_case(seconds: float) -> Result:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)], cwd=HERE.parent)
    try:
        wait_http(f"http://127.0.0.1:{port}/count")
        result = run_wrk(f"http://127.0.0.1:{port}/floor", seconds)
        result.case = "floor: bare ASGI app answering 202"
        return result
    finally:
        proc.terminate()
        proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--quick", action="store_true", help="1 s per case (a smoke run)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    seconds = 1 if args.quick else args.seconds
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    results = [floor_case(seconds)]
    for dispatch, delivery in [
        ("inline", "at-least-once"),
        ("process", "at-least-once"),
        ("inline", "at-most-once"),
    ]:
        results.append(gateway_case(dispatch, delivery, seconds))
    floor = results[0].rps
    print(f"\n{seconds:g} s per case, wrk -t1 -c64, 2-core machine shared by all processes\n")
    print(
        "| case | accepted ev/s | × floor | p50 ms | p99 ms | non-2xx "
        "| delivered during | after drain |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.case} | {r.rps:,.0f} | {r.rps / floor:.2f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.non_2xx} | {r.delivered_during:,} | {r.delivered_after:,} |"
        )


if __name__ == "__main__":
    main()
