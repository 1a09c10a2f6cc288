"""A smoke run of the benchmark (``python -m bench``): it runs end to end and reports every row.

Tiny loads for a fraction of a second each, with the asyncio load generator (CI has no
``wrk``). It asserts that the reports are complete, never a timing.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest
from bench.rows import SPECS

from tests.support.nats_kv import require_nats

ROOT = pathlib.Path(__file__).parents[2]


def _run(module: str, *args: str, timeout_s: float) -> str:
    """``python -m <module> <args>`` from the checkout; its stdout, once it exited 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.e2e
@pytest.mark.timeout(240)  # ~25 s on an idle 2-core machine; generous for a busy one
def test_a_quick_benchmark_run_writes_every_row(tmp_path: pathlib.Path) -> None:
    args = ["--quick", "--seconds", "0.3", "--generator", "asyncio", "--out", str(tmp_path)]
    _run("bench", *args, timeout_s=220)

    results = json.loads((tmp_path / "results.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert list(rows) == [spec.key for spec in SPECS]
    for key, row in rows.items():
        if key.startswith("nats.") and row["value"] is None:  # no NATS server here
            assert "gateway on NATS not measured" in row["note"], row
        else:
            assert row["value"] is not None, row
            assert row["passed"] is not None or row["target"] == "report", row
    assert results["machine"]["cpu"]
    assert results["command"].startswith("python -m bench")

    report = (tmp_path / "RESULTS.md").read_text()
    for spec in SPECS:
        assert spec.figure in report
    assert "How the cores were shared" in report
    assert (tmp_path / "latency.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.e2e
@pytest.mark.timeout(120)  # ~5 s on an idle 2-core machine
def test_the_cpu_probe_reports_every_process_per_delivery() -> None:
    args = ["--fanout", "2", "--rates", "0", "50", "--seconds", "0.5"]
    idle, loaded = _run("bench.cpu_probe", *args, timeout_s=100).split("50 ev/s × 2: ")
    assert idle.startswith("0 ev/s × 2: delivered 0 of 0")
    counts = re.match(r"delivered (\d+) of (\d+); within 1 s of the load's end", loaded)
    assert counts is not None, loaded
    assert int(counts[1]) == int(counts[2]) > 0
    lines = {line.split()[0]: line for line in loaded.splitlines() if line.startswith("  ")}
    for process in ("gateway", "receiver", "worker0"):
        assert "µs/delivery" in lines[process], loaded


@pytest.mark.timeout(60)  # ~2 s
def test_the_app_probe_plans_every_delivery_and_reports_per_request() -> None:
    # The probe exits non-zero when the deliveries it saw planned are not fanout × requests.
    out = _run(
        "bench.app_probe", "--fanout", "1", "3", "--requests", "50", "--rounds", "2", timeout_s=50
    )
    lines = out.splitlines()
    assert [line.split(" at-most-once")[0].strip() for line in lines] == ["1", "3"], out
    assert all(re.search(r": +\d+\.\d+ µs per request$", line) for line in lines), out


@pytest.mark.e2e
@pytest.mark.timeout(120)  # ~5 s on an idle 2-core machine
def test_the_cluster_spread_tool_runs_a_tiny_cluster_and_cleans_up(
    tmp_path: pathlib.Path,
) -> None:
    require_nats()
    out = tmp_path / "spread.json"
    args = ["-n", "2", "-e", "4", "-t", "0.2", "-s", "0.1", "-c", "1", "--json", str(out)]
    _run("bench.cluster_spread", *args, timeout_s=100)

    result = json.loads(out.read_text())
    assert result["calls"] == 4
    assert sum(result["per_instance"].values()) == 4
    assert (result["missing"], result["duplicates"], result["left"]) == ([], {}, [])
    assert result["exit_codes"] == {"i0": 0, "i1": 0}
    assert not pathlib.Path(result["run_dir"]).exists()  # its work dir is removed
