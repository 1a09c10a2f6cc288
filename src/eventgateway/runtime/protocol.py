"""The wire between the gateway and a worker process: frames on a dedicated pipe pair.

A worker gets two extra pipe ends (``pass_fds``): it reads requests from one and writes
answers to the other. Its stdout and stderr stay free for the handler's output, which the
parent captures as log entries (``output.py``): one per record the handler wrote.

Every frame is ``>II`` (header length, body length), a JSON header, then the body bytes::

    worker → parent  {"type": "ready", "pid": 123, "init_error": null}
                     body: b"" or, when the handler could not be loaded, the error JSON
    parent → worker  {"type": "invoke", "seq": 1, "request_id": "…", "timeout_ms": 6000}
                     body: the event JSON, exactly as the gateway delivers it
    worker → parent  {"type": "result", "seq": 1, "ok": true, "duration_ms": 0.42,
                      "max_memory_used_mb": 19, "retire": false}
                     body: the handler's return value as JSON, or the error JSON

The body travels next to the header instead of inside it so that neither side re-encodes an
event or a result it only passes on. ``retire`` asks the parent not to reuse the worker
(after a ``MemoryError``, or when the handler never loaded, so the next call loads it
afresh as Lambda does).

Before each ``result`` frame the worker writes ``<sentinel>:<seq>`` as a line to stdout and
to stderr, after flushing both. The parent ends an invocation's log (``END``) only once it
has read both sentinels, so every line the handler printed lands before ``END``. The
sentinel carries a per-worker random token, so a handler cannot fake it by accident.

A record is one ``print``, ``console.log`` or ``logging`` record (in Python, one
``write`` to ``sys.stdout``/``sys.stderr``; in Node.js, one ``process.stdout.write``). On
stdout and stderr the worker ends each line of a record that the record's next line
continues with :data:`CONTINUED` (``0xFF``, which UTF-8 text never contains) before the
newline; the parent joins such lines into one entry and drops the byte. A record's final
line, trailing blank lines, and everything written by other means (``os.write(1, …)``, a
child process) are unmarked and stay one entry per line::

    print("Saving user to CRM:", user, sep="\\n")
    → b"Saving user to CRM:\\xff\\n{'username': 'ada'}\\n"
    → one entry: "Saving user to CRM:\\n{'username': 'ada'}"

Python's and Node's worker sides (``python_worker.py``, ``node_worker.js``) implement the
same frames without importing this module, so a cold start pulls in nothing but the stdlib.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CONTINUED",
    "MAX_FRAME_BYTES",
    "Frame",
    "ProtocolError",
    "Result",
    "encode_frame",
    "memory_figure",
    "read_frame",
    "result_of",
    "sentinel_line",
]

_PREFIX: Final = struct.Struct(">II")
# Events and results are bounded well below this by the gateway; the cap only stops a
# corrupted length prefix from making the parent allocate gigabytes.
MAX_FRAME_BYTES: Final = 256 * 1024 * 1024
# Ends (before the newline) a line of a handler's output that the next line continues.
CONTINUED: Final = b"\xff"


class ProtocolError(Exception):
    """Raised when a worker sends something that is not a well-formed frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: the JSON header and the raw body."""

    header: dict[str, Any]
    body: bytes


def encode_frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    """Serialise ``header`` and ``body`` into one frame."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(head), len(body)) + head + body


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame from ``reader``, or ``None`` at a clean end of stream.

    Raises:
        ProtocolError: the stream ended inside a frame or the frame is malformed.
    """
    try:
        prefix = await reader.readexactly(_PREFIX.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("worker closed its pipe inside a frame prefix") from exc
    head_len, body_len = _PREFIX.unpack(prefix)
    if head_len + body_len > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {head_len + body_len} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        data = await reader.readexactly(head_len + body_len)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("worker closed its pipe inside a frame") from exc
    try:
        header = json.loads(data[:head_len])
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nested too deep
        raise ProtocolError(f"frame header is not JSON: {data[:80]!r}") from exc
    if not isinstance(header, dict):
        raise ProtocolError(f"frame header is not an object: {header!r}")
    return Frame(header=header, body=data[head_len:])


@dataclass(frozen=True, slots=True)
class Result:
    """The figures of a ``result`` header, checked."""

    ok: bool
    duration_ms: float
    max_memory_used_mb: int
    retire: bool


def memory_figure(header: dict[str, Any]) -> int:
    """The header's ``max_memory_used_mb`` (0 when absent).

    Raises:
        ProtocolError: it is not a non-negative integer.
    """
    value = header.get("max_memory_used_mb", 0)
    if type(value) is not int or value < 0:  # type(): a bool is an int too
        raise ProtocolError(f"max_memory_used_mb is not a count of MiB: {value!r:.80}")
    return value


def result_of(header: dict[str, Any]) -> Result:
    """The checked figures of a ``result`` header.

    The handler runs in the worker and can write to the result pipe itself: a frame is
    untrusted input, and a malformed one means the worker is broken.

    Raises:
        ProtocolError: a field is missing or has the wrong type.
    """
    ok, retire, duration = header.get("ok"), header.get("retire", False), header.get("duration_ms")
    if type(ok) is not bool or type(retire) is not bool:
        raise ProtocolError(f"ok/retire are not booleans: {ok!r:.80}, {retire!r:.80}")
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise ProtocolError(f"duration_ms is not a number: {duration!r:.80}")
    if not math.isfinite(duration) or duration < 0:
        raise ProtocolError(f"duration_ms is not a duration: {duration!r}")
    return Result(ok, float(duration), memory_figure(header), retire)


def sentinel_line(token: str, seq: int) -> bytes:
    """The marker a worker prints after invocation ``seq`` (without the newline)."""
    return f"{token}:{seq}".encode()
