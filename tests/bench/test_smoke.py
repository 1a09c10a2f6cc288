"""A smoke run of the benchmark (``python -m bench``): it runs end to end and reports every row.

Tiny loads for a fraction of a second each, with the asyncio load generator (CI has no
``wrk``). It asserts that the reports are complete, never a timing.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from bench.rows import SPECS

ROOT = pathlib.Path(__file__).parents[2]


@pytest.mark.e2e
@pytest.mark.timeout(240)  # ~25 s on an idle 2-core machine; generous for a busy one
def test_a_quick_benchmark_run_writes_every_row(tmp_path: pathlib.Path) -> None:
    args = ["--quick", "--seconds", "0.3", "--generator", "asyncio", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

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
