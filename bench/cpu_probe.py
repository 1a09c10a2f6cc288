"""Where the CPU goes at a fixed offered rate: per process, per thread (not a test).

Starts a receiver (``bench.sink`` as the throughput ladders do, or the ASGI one with
``--receiver asgi``) and ``eg serve`` (SQLite, or NATS with ``--nats``; unpinned unless
``--pin``),
subscribes ``--fanout`` functions on one path (at least once, or ``--at-most-once``), then
for each ``--rates`` step offers that many events/s for ``--seconds`` (open loop,
``bench.loadgen``) and prints, per process and per thread: user and system CPU, the time
spent runnable but waiting for a core (``/proc/<tid>/schedstat``), CPU per delivery, and
the share delivered within 1 s of the load's end (the throughput ladder's criterion). A
rate of 0 measures idle.

    .venv/bin/python -m bench.cpu_probe --fanout 10 --rates 1000 1500 2000 --seconds 5
    .venv/bin/python -m bench.cpu_probe --rates 1000 --py-spy   # + raw py-spy samples

``--py-spy`` records the gateway and its worker (``--nonblocking``, 250 Hz, raw stacks per
thread) into ``bench/out/cpu_probe/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from bench import natsgateway
from bench.procs import HERE, Cores, children, procs, start_gateway, start_receiver, stop_gateway
from bench.runner import Context, drain, loadgen

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
Threads = dict[tuple[str, str], tuple[float, float, float]]  # (tid, name) → user, sys, waited


def threads(pid: int) -> Threads:
    """Every thread of ``pid``: user and system CPU seconds, seconds waited for a core."""
    out: Threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            stat = pathlib.Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            waited_ns = pathlib.Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1]
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            user_s, sys_s = int(fields[11]) / _TICKS_PER_S, int(fields[12]) / _TICKS_PER_S
            out[(tid, name)] = (user_s, sys_s, int(waited_ns) / 1e9)
    return out


def report(name: str, before: Threads, after: Threads, deliveries: int) -> str:
    """One line: the process's CPU, per delivery, and each busy thread's share."""
    total_s, parts = 0.0, []
    for key, (user_s, sys_s, waited_s) in after.items():
        user0, sys0, waited0 = before.get(key, (0.0, 0.0, 0.0))
        cpu_s = user_s - user0 + sys_s - sys0
        total_s += cpu_s
        if cpu_s > 0.02:
            parts.append(
                f"{key[1]}[{key[0]}] user {user_s - user0:.2f} sys {sys_s - sys0:.2f} "
                f"waited {waited_s - waited0:.2f}"
            )
    per = f" = {total_s / deliveries * 1e6:.1f} µs/delivery" if deliveries else ""
    return f"  {name:8s} CPU {total_s:.2f} s{per}\n" + "".join(f"      {p}\n" for p in parts)


def _spies(pids: dict[str, int], seconds: float, rate: int) -> list[subprocess.Popen[bytes]]:
    out_dir = HERE / "out" / "cpu_probe"
    out_dir.mkdir(parents=True, exist_ok=True)
    spy = pathlib.Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                *(str(spy), "record", "--nonblocking", "-r", "250", "-f", "raw", "--threads"),
                *("-o", str(out_dir / f"{name}-{rate}.txt"), "-p", str(pid)),
                *("-d", str(max(1, int(seconds)))),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
        if name != "receiver"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fanout", type=int, default=1, help="subscriptions on the path")
    parser.add_argument("--rates", type=int, nargs="+", default=[1000], help="events/s steps")
    parser.add_argument("--seconds", type=float, default=5.0, help="per step")
    parser.add_argument("--nats", action="store_true", help="--store nats://127.0.0.1:4222")
    parser.add_argument("--py-spy", action="store_true", help="record raw stacks per step")
    parser.add_argument(
        "--at-most-once", action="store_true", help='subscriptions with "delivery": "at-most-once"'
    )
    parser.add_argument(
        "--receiver",
        choices=["sink", "asgi"],
        default="sink",
        help="the function: bench.sink (a bare protocol) or bench.receiver (ASGI, uvicorn)",
    )
    parser.add_argument(
        "--pin",
        choices=["none", "worker", "split"],
        default="none",
        help="core sharing, as python -m bench --pin (worker: the delivery worker alone)",
    )
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="eg-cpu-probe-"))
    with procs(work) as owner, contextlib.ExitStack() as stack:
        ctx = Context(owner, Cores(args.pin), args.seconds, False, "asyncio", False, work, work)
        store = stack.enter_context(natsgateway.store()) if args.nats else ()
        module = "bench.sink" if args.receiver == "sink" else "bench.receiver"
        receiver = start_receiver(owner, ctx.cores.load, module=module)
        gateway = start_gateway(owner, ctx.cores, *store)
        try:
            for index in range(args.fanout):
                gateway.function(f"f{index}", f"{receiver.url}/f{index}")
                delivery = "at-most-once" if args.at_most_once else "at-least-once"
                gateway.subscribe(f"f{index}", "/probe", delivery=delivery)
            pids = {"gateway": gateway.proc.pid, "receiver": receiver.proc.pid}
            pids.update({f"worker{i}": pid for i, pid in enumerate(children(gateway.proc.pid))})
            for rate in args.rates:
                before = {name: threads(pid) for name, pid in pids.items()}
                counted = receiver.count()
                spies = _spies(pids, args.seconds, rate) if args.py_spy else []
                if rate:
                    sent = loadgen(
                        ctx, f"{gateway.events_url}/probe", rate=rate, seconds=args.seconds
                    )
                    expected = sent["ok"] * args.fanout
                    in_1s = drain(receiver, counted + expected, 1.0) - counted
                    delivered = drain(receiver, counted + expected, 30.0) - counted
                else:
                    time.sleep(args.seconds)  # idle: nothing to wait on but the clock
                    expected = in_1s = delivered = 0
                for spy in spies:
                    spy.wait()
                after = {name: threads(pid) for name, pid in pids.items()}
                share = f"{100 * in_1s / expected:.1f} %" if expected else "—"
                dropped = f"; dropped {gateway.dropped():,}" if args.at_most_once else ""
                print(
                    f"{rate} ev/s × {args.fanout}: delivered {delivered:,} of {expected:,}; "
                    f"within 1 s of the load's end {share}{dropped}"
                )
                for name in pids:
                    print(report(name, before[name], after[name], delivered), end="")
        finally:
            stop_gateway(owner, gateway)
            owner.stop(receiver.proc)


if __name__ == "__main__":
    main()
