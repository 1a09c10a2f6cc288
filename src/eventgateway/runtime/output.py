"""Capture of a worker's stdout or stderr: bytes in, log entries out, to the sink as they come.

One :class:`OutputPump` reads one stream of one worker. An entry is one *record*: one
``print``, ``console.log`` or ``logging`` record of the handler, however many lines it has.
The workers frame records on the plain pipe with one byte (``protocol.CONTINUED``): a line
of a record that the record's next line continues ends with ``0xFF`` before its newline,
a byte UTF-8 never produces. So the pump knows, when it reads a line, whether the entry is
complete, and never holds a finished entry back waiting for more::

    print("Saving user to CRM:", user, sep="\\n")
    → b"Saving user to CRM:\\xff\\n{'username': …}\\n"

Everything else (``os.write(1, …)``, a child process writing to the inherited fd) is
unmarked and gives one entry per line, as before. Memory stays bounded however much a
handler prints: the pump holds at most one read, one partial line and one unfinished
entry, each about ``MAX_LINE_BYTES``; a longer record is cut into several entries (no byte
lost), and when the sink is slower than the handler, the pipe fills and the handler blocks
in ``write``. An unfinished entry whose next line does not arrive within
``PENDING_ENTRY_S`` is emitted as it is (the rest becomes an entry of its own).

The worker's sentinel line (``protocol.py``) ends whatever is unfinished, and is swallowed
and reported instead of logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from eventgateway.runtime.base import LogLine, LogSink, Stream
from eventgateway.runtime.protocol import CONTINUED

__all__ = ["MAX_LINE_BYTES", "PENDING_ENTRY_S", "OutputPump"]

logger = logging.getLogger(__name__)

MAX_LINE_BYTES: Final = 256 * 1024  # per entry, a line or a multi-line record
PENDING_ENTRY_S: Final = 0.5
_READ_BYTES: Final = 64 * 1024
_MARK: Final = CONTINUED[0]
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
        stream: ``"stdout"`` or ``"stderr"``, recorded on every entry.
        sink: where the entries go; must not block.
        make_line: builds an entry from ``(stream, text)``, stamping the request id that is
            current when the entry is complete.
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
        self._partial = bytearray()  # the line being read, without its newline yet
        self._entry = bytearray()  # an unfinished record: its lines so far, "\n"-joined
        self._entry_open = False  # its last line said a continuation follows
        self._seen_seq = -1
        self._changed = asyncio.Event()
        self.eof = False
        # Set when a line says the process ran out of memory (V8's "FATAL ERROR: … heap out
        # of memory", CPython's "MemoryError"): a crash that follows is an OOM, not a bug.
        self.oom_hint = False

    async def run(self) -> None:
        """Read until the worker closes the stream; emit what is left."""
        try:
            while True:
                if self._entry_open:
                    try:
                        async with asyncio.timeout(PENDING_ENTRY_S):
                            chunk = await self._reader.read(_READ_BYTES)
                    except TimeoutError:  # the continuation is late: the entry goes as is
                        self._emit(self._close_entry([]))
                        continue
                else:
                    chunk = await self._reader.read(_READ_BYTES)
                if not chunk:
                    break
                self._feed(chunk)
        except (OSError, ValueError) as exc:  # a pipe torn down under us: same as EOF
            logger.debug("worker %s pipe failed: %r", self._stream, exc)
        finally:
            texts: list[str] = []
            if self._partial:  # a last line without its newline (and maybe its marker's)
                self._add_line(bytes(self._partial).removesuffix(CONTINUED), texts, last=True)
                self._partial.clear()
            self._emit(self._close_entry(texts))
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
        texts: list[str] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            self._line(bytes(buffer[start:end]), texts)
            start = end + 1
        del buffer[:start]
        # A line that never ends (a handler printing without newlines) is cut, not buffered.
        while len(buffer) >= MAX_LINE_BYTES:
            self._close_entry(texts)
            cut = MAX_LINE_BYTES - (buffer[MAX_LINE_BYTES - 1] == _MARK)  # a marker stays whole
            cut = self._before_sentinel(buffer, cut)
            texts.append(self._decode(bytes(buffer[:cut])))
            del buffer[:cut]
        self._emit(texts)

    def _before_sentinel(self, buffer: bytearray, cut: int) -> int:
        """``cut``, or earlier where a sentinel (or the start of one) begins across it.

        The sentinel follows output without a newline on the same line, and a read may end
        inside it: it must stay whole to be recognised. It is at most the token, ``:`` and
        20 digits long, so only that much before the cut is looked at, and the cut still
        moves forward.
        """
        token = self._token
        for at in range(max(0, cut - len(token) - 21), cut):
            if buffer[at] == token[0] and token.startswith(bytes(buffer[at : at + len(token)])):
                return at
        return cut

    def _line(self, raw: bytes, texts: list[str]) -> None:
        at = raw.find(self._token)
        if at < 0 and not self._entry_open and not raw.endswith(CONTINUED):
            texts.append(self._decode(raw))  # the usual case: a line that is an entry
            return
        seq = _sentinel_seq(raw[at + len(self._token) :]) if at >= 0 else None
        if seq is None:
            continued = raw.endswith(CONTINUED)
            self._add_line(raw[:-1] if continued else raw, texts, last=not continued)
            return
        # The sentinel follows whatever the handler printed without a final newline, and
        # ends the record in progress: all of it reaches the sink before it is reported.
        if at:
            self._add_line(raw[:at], texts, last=True)
        self._emit(self._close_entry(texts))
        texts.clear()
        self._seen_seq = max(self._seen_seq, seq)
        self._changed.set()

    def _add_line(self, raw: bytes, texts: list[str], *, last: bool) -> None:
        """Add one line (marker and newline removed) to the record in progress."""
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        entry = self._entry
        if self._entry_open:
            if len(entry) + 1 + len(raw) > MAX_LINE_BYTES:
                self._close_entry(texts)  # too big for one entry: the rest starts another
            else:
                entry += b"\n"
        entry += raw
        self._entry_open = True
        if last:
            self._close_entry(texts)

    def _close_entry(self, texts: list[str]) -> list[str]:
        """Move the record in progress, if any, to ``texts``; return ``texts``."""
        if self._entry_open:
            texts.append(self._decode(bytes(self._entry)))
            self._entry.clear()
            self._entry_open = False
        return texts

    @staticmethod
    def _decode(raw: bytes) -> str:
        text = raw.decode("utf-8", "replace")
        return text[:-1] if text.endswith("\r") else text

    def _emit(self, texts: list[str]) -> None:
        if not texts:
            return
        if not self.oom_hint:
            self.oom_hint = any("emory" in text and _is_oom(text) for text in texts)
        try:
            self._sink.append([self._make_line(self._stream, text) for text in texts])
        except Exception:
            # A failing sink must not stop the reading: the worker would block on a full pipe.
            logger.exception("log sink failed; %d %s entries lost", len(texts), self._stream)


def _sentinel_seq(rest: bytes) -> int | None:
    """The invocation number after a sentinel token (``:<seq>``), or ``None`` if not one."""
    if not rest.startswith(b":"):
        return None
    try:
        return int(rest[1:])
    except ValueError:
        return None
