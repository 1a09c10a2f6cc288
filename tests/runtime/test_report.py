"""The frame lines' text: Lambda's shapes, exactly."""

from __future__ import annotations

import json
import signal

import pytest

from eventgateway.runtime.report import (
    billed_ms,
    end_line,
    error_payload,
    exit_description,
    report_line,
    start_line,
    timeout_message,
)

RID = "7b8800f5-2d34-11e8-8165-171c6f09ec0e"


def test_start_and_end_lines():
    assert start_line(RID) == f"START RequestId: {RID} Version: $LATEST"
    assert end_line(RID) == f"END RequestId: {RID}"


def test_a_warm_report_line_is_the_walkthroughs():
    line = report_line(RID, duration_ms=5.77, memory_mb=1024, max_memory_used_mb=19)

    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 5.77 ms\tBilled Duration: 6 ms"
        "\tMemory Size: 1024 MB\tMax Memory Used: 19 MB"
    )


def test_a_cold_report_line_ends_with_the_init_duration():
    line = report_line(
        RID, duration_ms=1.004, memory_mb=128, max_memory_used_mb=12, init_duration_ms=123.456
    )

    assert line.endswith("\tMax Memory Used: 12 MB\tInit Duration: 123.46 ms")
    assert "\tDuration: 1.00 ms\tBilled Duration: 2 ms" in line


@pytest.mark.parametrize(
    ("duration_ms", "billed"), [(0.0, 1), (0.01, 1), (1.0, 1), (1.001, 2), (999.5, 1000)]
)
def test_billing_is_per_started_millisecond(duration_ms, billed):
    assert billed_ms(duration_ms) == billed


def test_timeout_message_uses_two_decimals():
    assert timeout_message(1) == "Task timed out after 1.00 seconds"
    assert timeout_message(6.5) == "Task timed out after 6.50 seconds"


@pytest.mark.parametrize(
    ("returncode", "words"),
    [
        (3, "exit status 3"),
        (0, "exit status 0"),
        (-signal.SIGKILL, "signal: killed"),
        (-signal.SIGSEGV, "signal: segmentation fault"),
        (-signal.SIGTERM, "signal: SIGTERM"),
        (-99, "signal 99"),
        (None, "unknown exit"),
    ],
)
def test_exit_descriptions(returncode, words):
    assert exit_description(returncode) == words


def test_error_payload_is_lambdas_shape():
    assert json.loads(error_payload("Runtime.ExitError", "gone")) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "gone",
        "stackTrace": [],
    }
