"""Capture of a worker's stdout or stderr: bytes in, log lines out, to the sink as they come.

One :class:`OutputPump` reads one stream of one worker. It splits the bytes into lines (a line
longer than ``MAX_LINE_BYTES`` is cut into pieces), hands each read's lines to the sink at
once, and watches for the worker's sentinel line (``protocol.py``), which it swallows and
reports instead. Memory stays bounded however much a handler prints: the pump holds at most
one read and one partial line, and when the sink is slower than the handler, the pipe fills
and the handler blocks in ``write``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from eventgateway.runtime.base import LogLine, LogSink, Stream

__all__ = ["MAX_LINE_BYTES", "OutputPump"]

logger = logging.getLogger(__name__)

MAX_LINE_BYTES: Final = 256 * 1024
_READ_BYTES: Final = 64 * 1024
_OOM_HINTS: Final = (
    "JavaScript heap out of memory",
    "Fatal process out of memory",
    "MemoryError",
    "Cannot allocate memory",
)


def _is_oom(text: str) -> bool:
    return any(hint in text for hint in _OOM_HINTS)


class OutputPump:
    """Turns one output stream of a worker into :class:`LogLine` s for its current request.

    Args:
        reader: the worker's stdout or stderr.
        stream: ``"stdout"`` or ``"stderr"``, recorded on every line.
        sink: where the lines go; must not block.
        make_line: builds a line from ``(stream, text)``, stamping the request id that is
            current when the line is read.
        token: the worker's sentinel token.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        stream: Stream,
        sink: LogSink,
        make_line: Callable[[Stream, str], LogLine],
        token: str,
    ) -> None:
        self._reader = reader
        self._stream: Stream = stream
        self._sink = sink
        self._make_line = make_line
        self._token = token.encode()
        self._partial = bytearray()
        self._seen_seq = -1
        self._changed = asyncio.Event()
        self.eof = False
        # Set when a line says the process ran out of memory (V8's "FATAL ERROR: … heap out
        # of memory", CPython's "MemoryError"): a crash that follows is an OOM, not a bug.
        self.oom_hint = False

    async def run(self) -> None:
        """Read until the worker closes the stream; emit what is left."""
        try:
            while chunk := await self._reader.read(_READ_BYTES):
                self._feed(chunk)
        except (OSError, ValueError) as exc:  # a pipe torn down under us: same as EOF
            logger.debug("worker %s pipe failed: %r", self._stream, exc)
        finally:
            if self._partial:
                self._emit([self._decode(bytes(self._partial))])
                self._partial.clear()
            self.eof = True
            self._changed.set()

    async def wait_for(self, seq: int) -> None:
        """Return once the sentinel of invocation ``seq`` (or the end of the stream) was read."""
        while self._seen_seq < seq and not self.eof:
            self._changed.clear()
            await self._changed.wait()

    def _feed(self, chunk: bytes) -> None:
        buffer = self._partial
        buffer += chunk
        lines: list[str] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            self._line(bytes(buffer[start:end]), lines)
            start = end + 1
        del buffer[:start]
        # A line that never ends (a handler printing without newlines) is cut, not buffered.
        while len(buffer) >= MAX_LINE_BYTES:
            lines.append(self._decode(bytes(buffer[:MAX_LINE_BYTES])))
            del buffer[:MAX_LINE_BYTES]
        if lines:
            self._emit(lines)

    def _line(self, raw: bytes, lines: list[str]) -> None:
        at = raw.find(self._token)
        if at < 0:
            lines.append(self._decode(raw))
            return
        # The sentinel follows whatever the handler printed without a final newline.
        if at:
            lines.append(self._decode(raw[:at]))
        if lines:  # what came before the sentinel reaches the sink before it is reported
            self._emit(lines)
            lines.clear()
        seq_text = raw[at + len(self._token) + 1 :]
        try:
            self._seen_seq = max(self._seen_seq, int(seq_text))
        except ValueError:
            lines.append(self._decode(raw))  # not ours after all
            return
        self._changed.set()

    @staticmethod
    def _decode(raw: bytes) -> str:
        text = raw.decode("utf-8", "replace")
        return text[:-1] if text.endswith("\r") else text

    def _emit(self, texts: list[str]) -> None:
        if not self.oom_hint:
            self.oom_hint = any("emory" in text and _is_oom(text) for text in texts)
        try:
            self._sink.append([self._make_line(self._stream, text) for text in texts])
        except Exception:
            # A failing sink must not stop the reading: the worker would block on a full pipe.
            logger.exception("log sink failed; %d %s lines lost", len(texts), self._stream)
