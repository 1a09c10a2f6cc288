"""Which CPUs a process may run on: ``eg serve --server-cpus`` and ``--worker-cpus``.

On a dedicated host, a delivery worker with a core of its own does not wait in the run
queue behind the HTTP process (docs/delivery.md, "Capacity and cost on one machine").
Each process pins itself at its start, before it starts any thread, so every thread it
starts inherits the set; a worker restarted after a crash pins itself again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection

__all__ = ["available_cpus", "format_cpus", "parse_cpus", "pin_this_process"]


def available_cpus() -> frozenset[int]:
    """The CPUs this process may use (its affinity, within its cgroup's cpuset)."""
    return frozenset(os.sched_getaffinity(0))


def parse_cpus(text: str, available: Collection[int] | None = None) -> frozenset[int]:
    """A CPU list as ``taskset -c`` takes it: ``1``, ``0,2``, ``2-3``, ``0,2-3``.

    Raises:
        ValueError: the list is malformed, empty, or names a CPU outside ``available``
            (default: :func:`available_cpus`).
    """
    if not sys.platform.startswith("linux"):
        raise ValueError("pinning to CPUs needs Linux")
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{text!r} is not a CPU list (for example 1, 0,2 or 2-3)")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"{part!r}: a range goes from the lower CPU to the higher")
        cpus.update(range(low, high + 1))
    usable = available_cpus() if available is None else frozenset(available)
    missing = sorted(cpus - usable)
    if missing:
        raise ValueError(
            f"CPU {format_cpus(missing)} is not available to this process "
            f"(available: {format_cpus(usable)})"
        )
    return frozenset(cpus)


def format_cpus(cpus: Collection[int]) -> str:
    """``cpus`` as a list :func:`parse_cpus` reads back (``0,2,3``)."""
    return ",".join(str(cpu) for cpu in sorted(cpus))


def pin_this_process(cpus: Collection[int]) -> None:
    """Run the calling thread — and every thread it starts from now on — on ``cpus`` only.

    Call it first thing, before any thread is started.
    """
    os.sched_setaffinity(0, set(cpus))
