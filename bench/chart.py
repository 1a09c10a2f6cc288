"""``latency.png``: emit→delivery p50/p90/p99 against offered rate, with the direct floor."""

from __future__ import annotations

import pathlib
from typing import Any

CAPTION = (
    "Emit→delivery latency (at-least-once) against offered rate, on SQLite and on one NATS "
    "JetStream server, beside a direct POST to the same receiver."
)


def draw(
    sweep: dict[str, Any] | None, nats: list[dict[str, Any]] | None, path: pathlib.Path
) -> str:
    """Draw the chart; returns its caption (or why there is none)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return "No chart: matplotlib is not installed (pip install -e '.[bench]')."
    figure, axes = plt.subplots(figsize=(10, 5), dpi=110)
    styles = {"p50": ("o", "C0"), "p90": ("s", "C1"), "p99": ("^", "C3")}
    all_rates: set[int] = set()
    series_of = {**(sweep or {}), "nats": nats or []}
    for series, label, line in (
        ("sqlite", "gateway, SQLite", "-"),
        ("nats", "gateway, NATS", "--"),
        ("floor", "direct POST", ":"),
    ):
        points = series_of.get(series) or []
        rates = [p["offered_rate"] for p in points]
        all_rates.update(rates)
        for q, (marker, color) in styles.items():
            values = [max(p["emit_to_delivery_ms"].get(q, 0.0), 1e-3) for p in points]
            axes.plot(rates, values, line, marker=marker, color=color, label=f"{label} {q}")
    axes.axhline(2.0, color="C0", linewidth=0.6, linestyle="-.", label="target p50 ≤ 2 ms")
    axes.axhline(5.0, color="C3", linewidth=0.6, linestyle="-.", label="target p99 ≤ 5 ms")
    if not nats:
        axes.plot([], [], " ", label="NATS JetStream: not measured")
    if all_rates:
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks(sorted(all_rates))
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
        axes.xaxis.set_minor_locator(ticker.NullLocator())
        axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    else:
        axes.text(0.5, 0.5, "latency figure not run", ha="center", transform=axes.transAxes)
    axes.set_xlabel("offered rate (events/s, open loop)")
    axes.set_ylabel("emit → delivery (ms)")
    axes.set_title("eventgateway: emit→delivery latency against offered rate")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return CAPTION
