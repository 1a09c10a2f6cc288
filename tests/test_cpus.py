"""``cpus.py``: the CPU lists of ``eg serve --server-cpus`` / ``--worker-cpus``."""

from __future__ import annotations

import re

import pytest

from eventgateway.cpus import format_cpus, parse_cpus

MACHINE = range(8)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("1", {1}),
        ("0,2", {0, 2}),
        ("2-3", {2, 3}),
        ("0, 2-4,7", {0, 2, 3, 4, 7}),
        ("3-3", {3}),
    ],
)
def test_a_list_reads_as_taskset_reads_it(text: str, cpus: set[int]) -> None:
    assert parse_cpus(text, MACHINE) == cpus
    assert parse_cpus(format_cpus(cpus), MACHINE) == cpus


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a CPU list"),
        ("one", "is not a CPU list"),
        ("1,", "is not a CPU list"),
        ("-1", "is not a CPU list"),
        ("1-", "is not a CPU list"),
        ("3-1", "from the lower CPU to the higher"),
        ("9", "CPU 9 is not available to this process (available: 0,1,2,3,4,5,6,7)"),
        ("6-9", "CPU 8,9 is not available"),
    ],
)
def test_a_bad_list_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cpus(text, MACHINE)
