"""Processes of a benchmark run: start, pin, configure, measure and stop them, by PID.

Every process the harness starts goes through :class:`Procs`, which stops them all (SIGTERM,
then SIGKILL past a timeout) when the run leaves its ``with`` block, whatever happened.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(
    url: str, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # waiting for a subprocess to listen: there is no event to wait on
    raise TimeoutError(f"{url} did not answer within {timeout_s:g} s")


def http_json(url: str, body: object | None = None, key: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def http_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        data: bytes = response.read()
        return data


# --- cores --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cores:
    """How the run shares the machine's cores between server and load.

    ``split``: the process under test (the gateway's HTTP process, or the floor's server)
    gets core 0 alone; everything else — the load generator, the receiver playing the
    function, the gateway's delivery worker — shares core 1. ``worker``: the gateway's
    delivery worker gets core 1 alone; everything else shares core 0 (for loads whose
    bottleneck is the worker: the fan-out ladder). ``none``: the kernel decides.
    """

    mode: str = "split"

    @property
    def active(self) -> bool:
        return self.mode in ("split", "worker") and len(os.sched_getaffinity(0)) >= 2

    @property
    def server(self) -> set[int] | None:
        return {sorted(os.sched_getaffinity(0))[0]} if self.active else None

    @property
    def load(self) -> set[int] | None:
        if not self.active:
            return None
        return {sorted(os.sched_getaffinity(0))[0 if self.mode == "worker" else 1]}

    @property
    def worker(self) -> set[int] | None:
        """Where the gateway's delivery worker runs."""
        return {sorted(os.sched_getaffinity(0))[1]} if self.active else None

    def describe(self) -> str:
        if not self.active:
            return f"unpinned: all processes share the {os.cpu_count()} cores (scheduler decides)"
        server, worker = sorted(self.server or ()), sorted(self.worker or ())
        if self.mode == "worker":
            return (
                f"worker: core {worker[0]} runs the gateway's delivery worker alone; core "
                f"{server[0]} runs the gateway's HTTP process, the load generator and the receiver"
            )
        return (
            f"split: core {server[0]} runs the process under test alone (the gateway's HTTP "
            f"process, or the ingest floor's bare server); core {worker[0]} runs the load "
            "generator, the receiver and the gateway's delivery worker"
        )


def pin(pid: int, cpus: set[int] | None) -> None:
    """Pin every thread of ``pid`` (sched_setaffinity on a pid moves only its main thread;
    a thread started before inherits nothing)."""
    if not cpus:
        return
    try:
        tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass  # the thread or process exited meanwhile: nothing to pin


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        for task in pathlib.Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(p) for p in task.read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


def rss_tree(pid: int) -> dict[str, int]:
    """Resident set size (VmRSS, bytes) of ``pid`` and each descendant, by "pid command"."""
    found = {}
    for each in [pid, *children(pid)]:
        try:
            cmdline = pathlib.Path(f"/proc/{each}/cmdline").read_bytes().split(b"\0")
            status = pathlib.Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue  # exited meanwhile
        name = " ".join(part.decode(errors="replace") for part in cmdline[1:4])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                found[f"{each} {name}"] = int(line.split()[1]) * 1024
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and all its descendants (VmRSS summed)."""
    return sum(rss_tree(pid).values())


# --- processes ----------------------------------------------------------------------------


@dataclass
class Procs:
    """Owns every subprocess of a run and stops each by PID."""

    log_dir: pathlib.Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(
        self,
        args: Sequence[str],
        name: str,
        cpus: set[int] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            list(args),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        log.close()
        pin(proc.pid, cpus)
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.started)):
            self.stop(proc)


@contextmanager
def procs(log_dir: pathlib.Path) -> Iterator[Procs]:
    owner = Procs(log_dir)
    try:
        yield owner
    finally:
        owner.stop_all()


# --- the receiver (a function endpoint) ---------------------------------------------------


@dataclass
class Receiver:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def count(self) -> int:
        return int(http_bytes(self.url + "/count"))

    def latencies_ms(self) -> list[float]:
        """Emit→arrival samples recorded since the last call (and forget them)."""
        raw = http_bytes(self.url + "/latency")
        return [int(ns) / 1e6 for ns in raw.split()] if raw else []


SINK = "bench.sink"
"""The function of the ingest runs and the ladders: a bare protocol (~10 µs per request,
against ~28 µs for the ASGI receiver), so the function takes as little as it can of the
cores it shares with the gateway under test."""


def start_receiver(
    owner: Procs, cpus: set[int] | None, name: str = "receiver", module: str = "bench.receiver"
) -> Receiver:
    """``module``: ``bench.receiver`` (ASGI on uvicorn) or ``bench.sink`` (a bare protocol)."""
    port = free_port()
    proc = owner.spawn([sys.executable, "-m", module, str(port)], name, cpus)
    receiver = Receiver(proc, port)
    wait_http(receiver.url + "/count", proc=proc)
    return receiver


# --- the gateway ---------------------------------------------------------------------------


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    events_port: int
    config_port: int
    data_dir: pathlib.Path
    key: str  # the operator key: configures any space when auth is on, ignored when off

    @property
    def events_url(self) -> str:
        return f"http://{HOST}:{self.events_port}"

    @property
    def config_url(self) -> str:
        return f"http://{HOST}:{self.config_port}/v1/spaces/bench"

    def function(self, function_id: str, url: str) -> None:
        http_json(
            self.config_url + "/functions",
            {"functionId": function_id, "type": "http", "provider": {"url": url}},
            self.key,
        )

    def event_type(self, name: str) -> None:
        http_json(self.config_url + "/eventtypes", {"name": name}, self.key)

    def subscribe(self, function_id: str, path: str, **extra: str) -> None:
        body = {"functionId": function_id, "path": path, "type": "async"}
        body.update(extra)
        body.setdefault("eventType", "bench.tick")
        http_json(self.config_url + "/subscriptions", body, self.key)

    def dropped(self) -> int:
        """At-most-once deliveries dropped so far (a full buffer: /v1/metrics)."""
        request = urllib.request.Request(
            f"http://{HOST}:{self.config_port}/v1/metrics",
            headers={"authorization": f"Bearer {self.key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("eventgateway_events_dropped_total")
            )
        )

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def rss_by_process_mb(self) -> dict[str, float]:
        return {name: rss / 2**20 for name, rss in rss_tree(self.proc.pid).items()}


# Flags newer gateways need for a capacity benchmark on loopback: the receiver is on
# 127.0.0.1 (SSRF guard), and per-space rate limits are a policy, not a capacity.
_BENCH_FLAGS = (
    ("--allow-private-targets",),
    ("--rate-limit-space", "0"),
    ("--rate-limit-key", "0"),
)


@functools.cache
def serve_flags() -> tuple[str, ...]:
    """The benchmark's extra ``eg serve`` flags this gateway knows (older ones lack some)."""
    done = subprocess.run(
        [sys.executable, "-m", "eventgateway", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    return tuple(part for flag in _BENCH_FLAGS if flag[0] in done.stdout for part in flag)


def start_gateway(owner: Procs, cores: Cores, *args: str) -> Gateway:
    """``eg serve`` on free ports and a fresh data dir, pinned per ``cores``."""
    events_port, config_port = free_port(), free_port()
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="eg-bench-", dir=owner.log_dir))
    key = secrets.token_urlsafe(32)
    proc = owner.spawn(
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
            "--log-level",
            "warning",
            "--shutdown-timeout",
            "2",
            *serve_flags(),
            *args,
        ],
        "gateway",
        cores.server,
        env={"EG_OPERATOR_KEY": key},
    )
    gateway = Gateway(proc, events_port, config_port, data_dir, key)
    wait_http(f"http://{HOST}:{config_port}/v1/status", proc=proc)
    if "inline" not in args:
        # The delivery worker starts beside the HTTP APIs: wait until it listens, so no
        # measurement includes its start-up.
        deadline = time.monotonic() + 30
        while not (data_dir / "worker.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # another process's start-up: nothing to wait on but the file
    # The delivery worker (--dispatch worker or process) is a child: move it to its core.
    for child in children(proc.pid):
        pin(child, cores.worker)
    gateway.event_type("bench.tick")
    return gateway


def stop_gateway(owner: Procs, gateway: Gateway) -> None:
    owner.stop(gateway.proc)
    shutil.rmtree(gateway.data_dir, ignore_errors=True)
