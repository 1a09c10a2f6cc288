"""The rows of the report: each figure, its floor, the ratio and the target, from raw results.

Every row is always present: a figure that was not run (``--only``) or failed says so in its
note, so ``RESULTS.md`` and ``results.json`` always have the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.latency import HEADLINE_RATE, at_rate, median_of

Results = dict[str, Any]
NOT_MEASURED = "gateway on NATS not measured"


@dataclass
class Row:
    key: str
    figure: str
    unit: str
    floor_label: str
    target: str
    value: float | None = None
    floor: float | None = None
    ratio: float | None = None
    passed: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Extract = Callable[[Results], tuple[float | None, float | None, str]]
Check = Callable[[float, float | None], bool]


@dataclass(frozen=True)
class Spec:
    key: str
    group: str  # the figure module whose results it reads (the --only name)
    figure: str
    unit: str
    floor_label: str
    target: str
    extract: Extract
    check: Check | None = None
    ratio: bool = True  # whether value / floor means something


def _ingest(mode: str) -> Extract:
    def extract(r: Results) -> tuple[float | None, float | None, str]:
        run, floor = r["ingest"][mode], r["ingest"]["floor"]
        lat = run["latency_ms"]
        rounds = r["ingest"].get("rounds", [])
        ratios = ", ".join(f"{x[mode]['ok_rps'] / x['floor']['ok_rps']:.2f}" for x in rounds)
        note = (
            f"{run['generator']}; 202 p50 {lat['p50']:.2f} / p99 {lat['p99']:.2f} ms; "
            f"non-2xx {run['sent'] - run['ok']:,}; delivered {run['delivered_during']:,} during, "
            f"{run['delivered_after_drain']:,} after drain; "
            f"ratio per round {ratios} (the median shown)"
        )
        return run["ok_rps"], run.get("floor_ok_rps", floor["ok_rps"]), note

    return extract


def _latency(q: str) -> Extract:
    def extract(r: Results) -> tuple[float | None, float | None, str]:
        rounds = r["latency"].get("headline")
        if not rounds:  # results of a run before the repeats
            through = at_rate(r["latency"]["sqlite"], HEADLINE_RATE)
            direct = at_rate(r["latency"]["floor"], HEADLINE_RATE)
            note = f"n={through.get('n', 0):,.0f}; p90 {through.get('p90', float('nan')):.2f} ms"
            return through.get(q), direct.get(q), note
        each = " / ".join(f"{p['emit_to_delivery_ms'].get(q, 0):.2f}" for p in rounds["sqlite"])
        samples = sum(p["emit_to_delivery_ms"].get("n", 0) for p in rounds["sqlite"])
        note = f"median of {len(rounds['sqlite'])} runs: {q} {each} ms; n={samples:,.0f} in all"
        return median_of(rounds["sqlite"], q), median_of(rounds["floor"], q), note

    return extract


def _e2e(which: str) -> Extract:
    def extract(r: Results) -> tuple[float | None, float | None, str]:
        ladder = r["throughput"][which]
        best = ladder["sustained"]
        if ladder["kept_up"]:
            note = f"highest step kept up: {best['offered_events_per_s']:,} ev/s offered"
        else:
            note = f"no step kept up (first: {best['offered_events_per_s']:,} ev/s offered)"
        return best["deliveries_per_s"], r["throughput"]["receiver_max"]["ok_rps"], note

    return extract


def _sync(q: str) -> Extract:
    def extract(r: Results) -> tuple[float | None, float | None, str]:
        sync = r["sync"]
        through = sync["gateway"]["latency_ms"][q]
        note = f"{sync['rate']:,} req/s; through the gateway {through:.2f} ms"
        return sync["added_ms"][q], sync["direct"]["latency_ms"][q], note

    return extract


def _runtime(q: str) -> Extract:
    def extract(r: Results) -> tuple[float | None, float | None, str]:
        rt = r["runtime"]
        floor = rt["in_process"]["json"][q]
        warm = rt["warm_python"][q]
        return warm - floor, floor, f"warm invoke() {warm:.3f} ms, Python, no-op handler"

    return extract


def _cold(r: Results) -> tuple[float | None, float | None, str]:
    cold = r["runtime"]["cold_python"]
    note = f"spawn → ready (Init Duration) p50 {cold['init']['p50']:.1f} ms"
    if "cold_nodejs" in r["runtime"]:
        note += f"; Node.js first call {r['runtime']['cold_nodejs']['first']['p50']:.1f} ms"
    return cold["first"]["p50"], r["runtime"]["in_process"]["json"]["p50"], note


def _nats(floor_path: tuple[str, ...], value: Callable[[Results], float | None]) -> Extract:
    """A NATS row: the gateway on JetStream (or why not) beside the bare nats-py floor."""

    def extract(r: Results) -> tuple[float | None, float | None, str]:
        found = r["nats"]
        floor: float | None = None
        notes = []
        if "error" in found:
            notes.append(f"floor not measured: {found['error']}")
        else:
            for part in floor_path:
                found = found[part]
            floor = float(found)
        gateway = r["nats"].get("gateway") or {"error": "not measured"}
        if "skipped" in gateway or "error" in gateway:
            reason = gateway.get("skipped") or gateway["error"]
            return None, floor, "; ".join([f"{NOT_MEASURED}: {reason}", *notes])
        return value(gateway), floor, "; ".join([_nats_note(gateway), *notes])

    return extract


def _nats_note(gateway: Results) -> str:
    run = gateway["ingest"]
    through = at_rate(gateway["latency"], HEADLINE_RATE)
    return (
        f"one nats-server, 1 replica; 202 p99 {run['latency_ms']['p99']:.2f} ms; "
        f"non-2xx {run['sent'] - run['ok']:,}; latency n={through.get('n', 0):,.0f}, "
        f"p90 {through.get('p90', float('nan')):.2f} ms"
    )


def _nats_latency(q: str) -> Callable[[Results], float | None]:
    return lambda gateway: at_rate(gateway["latency"], HEADLINE_RATE).get(q)


def _memory(which: str) -> Extract:
    def extract(r: Results) -> tuple[float | None, float | None, str]:
        mem = r["memory"]
        if which == "idle":
            return mem["idle_mb"], None, "eg serve + delivery worker, started and configured"
        note = f"{mem['backlog_events']:,} events backlogged (subscriber paused)"
        return mem["backlog_mb"], mem["idle_mb"], note

    return extract


SPECS: tuple[Spec, ...] = (
    Spec(
        "ingest.at_least_once",
        "ingest",
        "At-least-once ingest, 64 conns, 500-B CloudEvent, SQLite",
        "ev/s",
        "bare ASGI app answering 202, same server",
        "≥ 0.6 × floor",
        _ingest("at-least-once"),
        lambda v, f: f is not None and v >= 0.6 * f,
    ),
    Spec(
        "ingest.at_most_once",
        "ingest",
        "At-most-once ingest, same load",
        "ev/s",
        "bare ASGI app answering 202, same server",
        "≥ 0.8 × floor",
        _ingest("at-most-once"),
        lambda v, f: f is not None and v >= 0.8 * f,
    ),
    Spec(
        "latency.p50",
        "latency",
        f"Emit → delivery p50 at {HEADLINE_RATE:,} ev/s, durable",
        "ms",
        "direct POST to the same receiver, p50",
        "≤ 2 ms",
        _latency("p50"),
        lambda v, f: v <= 2.0,
    ),
    Spec(
        "latency.p99",
        "latency",
        f"Emit → delivery p99 at {HEADLINE_RATE:,} ev/s, durable",
        "ms",
        "direct POST to the same receiver, p99",
        "≤ 5 ms",
        _latency("p99"),
        lambda v, f: v <= 5.0,
    ),
    Spec(
        "e2e.one",
        "throughput",
        "Sustained end-to-end, 1 subscriber",
        "ev/s",
        "the receiver's own maximum (bench/sink.py: a bare uvloop protocol)",
        "≥ 8,000 ev/s",
        _e2e("one"),
        lambda v, f: v >= 8000,
    ),
    Spec(
        "e2e.fanout",
        "throughput",
        "Sustained fan-out 1 → 10",
        "deliveries/s",
        "the receiver's own maximum (bench/sink.py: a bare uvloop protocol)",
        "≥ 20,000 deliveries/s",
        _e2e("fanout"),
        lambda v, f: v >= 20000,
    ),
    Spec(
        "sync.p50",
        "sync",
        "Sync http.request route, gateway-added p50",
        "ms",
        "direct request to the function, p50",
        "≤ 1 ms",
        _sync("p50"),
        lambda v, f: v <= 1.0,
        ratio=False,
    ),
    Spec(
        "sync.p99",
        "sync",
        "Sync http.request route, gateway-added p99",
        "ms",
        "direct request to the function, p99",
        "≤ 3 ms",
        _sync("p99"),
        lambda v, f: v <= 3.0,
        ratio=False,
    ),
    Spec(
        "runtime.warm_p50",
        "runtime",
        "Local runtime, warm no-op invocation, added p50",
        "ms",
        "the function called in-process (+ JSON), p50",
        "≤ 2 ms",
        _runtime("p50"),
        lambda v, f: v <= 2.0,
        ratio=False,
    ),
    Spec(
        "runtime.warm_p99",
        "runtime",
        "Local runtime, warm no-op invocation, added p99",
        "ms",
        "the function called in-process (+ JSON), p99",
        "report",
        _runtime("p99"),
        ratio=False,
    ),
    Spec(
        "runtime.cold",
        "runtime",
        "Local runtime, cold start (first call, new worker)",
        "ms",
        "the function called in-process (+ JSON), p50",
        "report",
        _cold,
        ratio=False,
    ),
    Spec(
        "nats.ingest",
        "nats",
        "At-least-once ingest on NATS JetStream, same load",
        "ev/s",
        "bare nats-py publish to JetStream, 64 in flight",
        "report",
        _nats(("saturated", "msgs_per_s"), lambda g: g["ingest"]["ok_rps"]),
    ),
    Spec(
        "nats.latency_p50",
        "nats",
        "Emit → delivery p50 on NATS JetStream, 1,000 ev/s",
        "ms",
        "bare nats-py publish → ack at 1,000 msg/s, p50",
        "report",
        _nats(("paced", "ack_ms", "p50"), _nats_latency("p50")),
    ),
    Spec(
        "nats.latency_p99",
        "nats",
        "Emit → delivery p99 on NATS JetStream, 1,000 ev/s",
        "ms",
        "bare nats-py publish → ack at 1,000 msg/s, p99",
        "report",
        _nats(("paced", "ack_ms", "p99"), _nats_latency("p99")),
    ),
    Spec(
        "memory.idle",
        "memory",
        "RSS idle",
        "MB",
        "—",
        "≤ 80 MB",
        _memory("idle"),
        lambda v, f: v <= 80.0,
    ),
    Spec(
        "memory.backlog",
        "memory",
        "RSS with 100,000 events backlogged",
        "MB",
        "RSS idle, same run",
        "flat: ≤ 1.25 × idle",
        _memory("backlog"),
        lambda v, f: f is not None and v <= 1.25 * f,
    ),
)


def build(results: Results) -> list[Row]:
    rows = []
    for spec in SPECS:
        row = Row(spec.key, spec.figure, spec.unit, spec.floor_label, spec.target)
        found = results.get(spec.group)
        if found is None:
            row.note = "not run (--only)"
        elif "error" in found and spec.group != "nats":
            row.note = f"failed: {found['error']}"
        else:
            try:
                row.value, row.floor, row.note = spec.extract(results)
            except (KeyError, TypeError, IndexError) as exc:
                row.note = f"no figure: {type(exc).__name__} {exc}"
            if row.value is not None and spec.check is not None:
                row.passed = spec.check(row.value, row.floor)
            if spec.ratio and row.value is not None and row.floor:
                row.ratio = row.value / row.floor
        rows.append(row)
    return rows
