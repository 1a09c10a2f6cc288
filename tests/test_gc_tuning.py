"""The serving processes' collector settings, applied in a fresh interpreter (they are global)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from eventgateway.gc_tuning import YOUNG_THRESHOLD

_PROBE = textwrap.dedent(
    """
    import gc, weakref
    from eventgateway.gc_tuning import tune_for_serving

    class Node:
        pass

    tune_for_serving()
    print(gc.get_threshold()[0], gc.get_freeze_count() > 0)

    # Cycles are still collected by the threshold alone: no gc.collect() here.
    collected = []
    first = Node()
    first.other = Node()
    first.other.other = first
    weakref.finalize(first, collected.append, "cycle")
    del first
    for _ in range(3):
        garbage = [Node() for _ in range(THRESHOLD)]  # outlives the count: a collection
    print(collected)
    """
)


def test_serving_freezes_start_up_and_still_collects_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("THRESHOLD", str(YOUNG_THRESHOLD))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings, collected = done.stdout.splitlines()
    threshold, frozen = settings.split()
    assert int(threshold) == YOUNG_THRESHOLD > 700
    assert frozen == "True"
    assert collected == "['cycle']"
