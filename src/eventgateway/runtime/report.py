"""The text of an invocation's frame lines (START, END, REPORT) and of runtime errors.

The shapes are Lambda's, so log habits and tools carry over (``→`` is a tab)::

    START RequestId: <id> Version: $LATEST
    END RequestId: <id>
    REPORT RequestId: <id>→Duration: 5.77 ms→Billed Duration: 6 ms→Memory Size: 1024 MB→Max
    Memory Used: 19 MB

(one line) with ``→Init Duration: 123.45 ms`` appended on a cold start (Lambda puts it last). Pure
functions only: the pool decides when each line is due.
"""

from __future__ import annotations

import json
import math
import signal
from typing import Final

__all__ = [
    "VERSION",
    "billed_ms",
    "end_line",
    "error_payload",
    "exit_description",
    "report_line",
    "start_line",
    "timeout_message",
]

VERSION: Final = "$LATEST"


def start_line(request_id: str) -> str:
    """``START RequestId: <id> Version: $LATEST``."""
    return f"START RequestId: {request_id} Version: {VERSION}"


def end_line(request_id: str) -> str:
    """``END RequestId: <id>``."""
    return f"END RequestId: {request_id}"


def billed_ms(duration_ms: float) -> int:
    """Lambda bills per started millisecond, and at least one."""
    return max(1, math.ceil(duration_ms))


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
) -> str:
    """The REPORT line of one invocation; ``init_duration_ms`` only on a cold start."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
        f"\tBilled Duration: {billed_ms(duration_ms)} ms\tMemory Size: {memory_mb} MB"
        f"\tMax Memory Used: {max_memory_used_mb} MB"
    )
    if init_duration_ms is not None:
        line += f"\tInit Duration: {init_duration_ms:.2f} ms"
    return line


def timeout_message(timeout_s: float) -> str:
    """Lambda's wording: ``Task timed out after 1.00 seconds``."""
    return f"Task timed out after {timeout_s:.2f} seconds"


def exit_description(returncode: int | None) -> str:
    """How a worker ended, in Lambda's words: ``exit status 3`` or ``signal: killed``."""
    if returncode is None:
        return "unknown exit"
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    # Lambda spells SIGKILL as "signal: killed" (Go's wording); keep the others readable.
    words = {"SIGKILL": "killed", "SIGSEGV": "segmentation fault", "SIGABRT": "aborted"}
    return f"signal: {words.get(name, name)}"


def error_payload(error_type: str, message: str, stack: list[str] | None = None) -> bytes:
    """The ``{"errorType", "errorMessage", "stackTrace"}`` JSON Lambda reports."""
    return json.dumps(
        {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}
    ).encode()
