"""The Python worker's output streams: one ``write`` (one ``print``) is one log record.

Imported by ``python_worker.py`` as a sibling file (the worker runs as a script, outside
the package), so only the standard library is used here. The handler's
``sys.stdout``/``sys.stderr`` mark the inner line ends of each write with
``protocol.CONTINUED`` (``\xff``) and ``print`` makes one write of its whole text, so the
gateway's output pump can join the lines of a record back into one entry.
"""

from __future__ import annotations

import _thread
import builtins
import io
import os
import sys
from typing import Any

__all__ = ["RecordStream", "mark", "record_print"]


def mark(text: str) -> bytes:
    """``text`` as UTF-8, each inner line end marked ``\\xff\\n`` (trailing blank lines not)."""
    data = text.encode("utf-8", "backslashreplace")  # never contains 0xFF
    if data.find(b"\n") in (-1, len(data) - 1):  # the usual case: one line
        return data
    body = data.rstrip(b"\n")
    return body.replace(b"\n", b"\xff\n") + data[len(body) :]


class RecordStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr``: each ``write`` is one record of the function's log.

    Line-buffered: a write with a newline reaches the pipe at once, in one ``os.write``.
    ``buffer`` is the original stream's, flushed first so that bytes keep their order.
    """

    encoding = "utf-8"
    errors = "backslashreplace"
    line_buffering = True

    def __init__(self, fd: int, original: Any) -> None:
        self._fd = fd
        self._original = original
        self._pending = bytearray()
        self._lock = _thread.RLock()  # a handler's threads print whole records
        self.name = getattr(original, "name", f"<fd {fd}>")

    @property
    def buffer(self) -> Any:
        return self._original.buffer

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def reconfigure(self, **options: Any) -> None:
        """Accepted and ignored: the stream is always UTF-8 and line-buffered."""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        with self._lock:
            self._pending += mark(text)
            if "\n" in text or len(self._pending) >= 8192:
                self.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            try:
                self._original.flush()
            except (AttributeError, OSError, ValueError):
                pass
            if not self._pending:
                return
            data, self._pending = memoryview(self._pending), bytearray()
            while data:
                data = data[os.write(self._fd, data) :]


_builtin_print = builtins.print


def record_print(*args: object, file: Any = None, flush: bool = False, **layout: Any) -> None:
    """``print``; to the worker's own streams, its whole text (args, sep, end) in one write."""
    stream = sys.stdout if file is None else file
    if not isinstance(stream, RecordStream):
        _builtin_print(*args, file=file, flush=flush, **layout)
        return
    text = io.StringIO()  # print's own formatting and errors; `sep` and `end` in `layout`
    _builtin_print(*args, file=text, **layout)
    stream.write(text.getvalue())
    if flush:
        stream.flush()
