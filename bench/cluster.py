"""A few ``eg serve`` instances in cluster mode on one NATS JetStream prefix (bench tools).

Each instance gets free loopback ports, its own data dir and log under a work dir, and an
environment without the caller's ``EG_*`` variables. :func:`stop_all` stops every instance
and every process it started (its delivery worker, the local runtime's workers), by PID:
SIGTERM, then SIGKILL past a deadline. :func:`delete_streams` deletes every stream, KV
bucket and object store of the prefix. Used by ``bench.cluster_spread``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from bench import natsgateway
from bench.procs import HOST, children, free_port, wait_http


def eg_command() -> list[str]:
    """``eg`` beside the running interpreter (``python -m eventgateway`` when missing)."""
    eg = pathlib.Path(sys.executable).with_name("eg")
    return [str(eg)] if eg.exists() else [sys.executable, "-m", "eventgateway"]


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    ctype: str = "application/json",
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """``(status, body)``; an HTTP error status is returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def package_hash(src: str | None) -> tuple[str, str]:
    """Where ``eventgateway`` is imported from (``PYTHONPATH=src``) and a hash of its code."""
    env = {**os.environ, "PYTHONPATH": src} if src else dict(os.environ)
    code = "import eventgateway, os; print(os.path.dirname(eventgateway.__file__))"
    where = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(where).rglob("*")):
        if path.is_file() and path.suffix in (".py", ".js") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(where)).encode() + b"\0" + path.read_bytes())
    return where, digest.hexdigest()[:12]


def start_time(pid: int) -> str | None:
    """The process's start time (jiffies after boot), or ``None`` when it is gone."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(pid: int, started: str) -> bool:
    return start_time(pid) == started  # the same pid and start time: not a reused pid


@dataclass
class Instance:
    idx: int
    work: pathlib.Path
    events_port: int
    config_port: int
    proc: subprocess.Popen[bytes] | None = None
    known: dict[int, str] = field(default_factory=dict)  # pid → start time, to stop them

    @property
    def name(self) -> str:
        return f"i{self.idx}"

    @property
    def data_dir(self) -> pathlib.Path:
        return self.work / self.name

    @property
    def log(self) -> pathlib.Path:
        return self.work / f"{self.name}.log"

    @property
    def config(self) -> str:
        return f"http://{HOST}:{self.config_port}"

    @property
    def events(self) -> str:
        return f"http://{HOST}:{self.events_port}"

    def start(self, nats_url: str, prefix: str, src: str | None) -> None:
        self.data_dir.mkdir(parents=True, mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EG_")}
        if src:
            env["PYTHONPATH"] = src
        env["EG_OPERATOR_KEY"] = "bench-cluster-operator-key-unused-0123456789"
        args = [*eg_command(), "serve", "--no-auth", "--host", HOST]
        args += ["--events-port", str(self.events_port), "--config-port", str(self.config_port)]
        args += ["--data-dir", str(self.data_dir), "--store", nats_url, "--nats-prefix", prefix]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*args, "--log-level", "warning"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                env=env,
                start_new_session=True,  # a Ctrl-C reaches the bench only; it stops them
            )
        self.remember_pids()

    def remember_pids(self) -> None:
        """Note the instance and its live descendants (call it now and then while it runs)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in [self.proc.pid, *children(self.proc.pid)]:
            started = start_time(pid)
            if started is not None:
                self.known[pid] = started

    def log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def fresh_prefix() -> str:
    return f"egspread-{uuid.uuid4().hex[:10]}"


def plan(count: int, work: pathlib.Path) -> list[Instance]:
    """``count`` instances (not started) on distinct free loopback ports."""
    ports: list[int] = []
    while len(ports) < 2 * count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return [Instance(i, work, ports[2 * i], ports[2 * i + 1]) for i in range(count)]


def start_all(
    insts: list[Instance], nats_url: str, prefix: str, src: str | None, ready_s: float = 60.0
) -> None:
    """Start every instance and wait (bounded) until each answers ``/v1/ready``."""
    for inst in insts:
        inst.start(nats_url, prefix, src)
        time.sleep(0.3)  # stagger: the first one creates the prefix's streams
    deadline = time.monotonic() + ready_s
    for inst in insts:
        assert inst.proc is not None
        try:
            wait_http(inst.config + "/v1/ready", deadline - time.monotonic(), inst.proc)
        except (RuntimeError, TimeoutError):
            state = "timed out" if inst.proc.poll() is None else f"exited {inst.proc.returncode}"
            raise RuntimeError(f"{inst.name} not ready ({state}; its log below)") from None
        inst.remember_pids()


def stop_all(insts: list[Instance], grace_s: float = 25.0) -> list[str]:
    """Stop every instance and what it started: SIGTERM to each instance, SIGKILL to any
    process of theirs still alive past ``grace_s`` (+5 s for descendants). Returns the
    SIGKILLed ones as ``"name:pid"``."""
    for inst in insts:
        inst.remember_pids()
    running = [i for i in insts if i.proc is not None and i.proc.poll() is None]
    for inst in running:
        assert inst.proc is not None
        inst.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for inst in running:
        assert inst.proc is not None
        try:
            inst.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    end = time.monotonic() + 5  # a moment for children to follow their parent
    while time.monotonic() < end and leftovers(insts):
        time.sleep(0.2)
    killed = []
    for inst in insts:
        for pid, started in inst.known.items():
            if alive(pid, started):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(f"{inst.name}:{pid}")
                except ProcessLookupError:
                    pass
        if inst.proc is not None:
            if inst.proc.poll() is None:
                inst.proc.kill()
            try:
                inst.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    return killed


def leftovers(insts: list[Instance]) -> list[str]:
    """Processes of the instances still alive, as ``"name:pid"``."""
    return [f"{i.name}:{p}" for i in insts for p, s in i.known.items() if alive(p, s)]


def delete_streams(nats_url: str, prefix: str) -> list[str]:
    """Delete every stream, KV bucket and object store of ``prefix``; their names."""
    return asyncio.run(asyncio.wait_for(natsgateway.delete_prefix(prefix, nats_url), 30))
