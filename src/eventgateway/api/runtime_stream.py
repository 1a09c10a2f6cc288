"""The wire shape of function log lines, and the Server-Sent Events stream of a live tail.

A stream runs three tasks in one task group: the pump (history, then every new line of
the tail), the keep-alive timer, and a watcher of ``receive()`` that ends everything on
``http.disconnect`` — so a client that goes away releases its tail at once, not at the
next line or keep-alive that fails to send. The tail is closed however the stream ends.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

import anyio
import msgspec
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from eventgateway.runtime.base import LogLine
from eventgateway.runtime.logs_tail import is_notice

__all__ = ["EventStream", "LogEntry", "encode_lines", "entry", "rfc3339_ms"]

KEEPALIVE: Final = b": keep-alive\n\n"
_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies such as nginx must not hold events back
]


class LogEntry(msgspec.Struct):
    """One log line on the wire."""

    timestamp: str
    requestId: str  # the wire's name
    stream: str
    message: str


_encoder: Final = msgspec.json.Encoder()
_Emit = Callable[[bytes], Awaitable[None]]


def rfc3339_ms(timestamp: float) -> str:
    """Unix seconds as RFC 3339 in UTC with milliseconds: ``2026-11-26T18:20:07.365Z``.

    Truncated, not rounded, so the text used as ``since`` selects the line it came from.
    """
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def entry(line: LogLine) -> LogEntry:
    """The wire form of ``line``."""
    return LogEntry(rfc3339_ms(line.timestamp), line.request_id, line.stream, line.message)


def encode_lines(lines: Sequence[LogLine]) -> bytes:
    """A JSON array of the wire forms of ``lines``."""
    return _encoder.encode([entry(line) for line in lines])


def _event(line: LogLine) -> bytes:
    return b"data: " + _encoder.encode(entry(line)) + b"\n\n"


class EventStream(Response):
    """A ``text/event-stream`` response of ``history`` followed by the lines of ``tail``.

    Args:
        tail: the live lines (opened before ``history`` was read); closed when the
            stream ends.
        history: lines already stored, oldest first.
        filter: a substring new lines must contain (the gateway's notices always pass).
        keepalive_s: idle seconds before a ``: keep-alive`` comment.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        tail: AsyncIterator[LogLine],
        history: Sequence[LogLine],
        filter: str | None,
        *,
        keepalive_s: float,
    ) -> None:
        super().__init__(status_code=200)
        self._tail = tail
        self._history = history
        self._filter = filter
        self._keepalive_s = keepalive_s
        self._last_sent = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope
        lock = anyio.Lock()  # the pump and the keep-alive timer share one send
        ended = False
        self._last_sent = anyio.current_time()

        async def emit(chunk: bytes) -> None:
            async with lock:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self._last_sent = anyio.current_time()

        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            async with anyio.create_task_group() as group:

                async def until_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                async def pump() -> None:
                    nonlocal ended
                    await self._pump(emit)
                    ended = True  # the store closed: finish the response properly
                    group.cancel_scope.cancel()

                group.start_soon(until_disconnect)
                group.start_soon(self._keep_alive, emit)
                group.start_soon(pump)
            if ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-send (servers of ASGI spec 2.4 raise this)
        finally:
            aclose = getattr(self._tail, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _pump(self, emit: _Emit) -> None:
        # A first chunk at once: the client sees the stream open even with no history.
        history = self._history
        await emit(b"".join(_event(line) for line in history) or KEEPALIVE)
        # Lines appended between opening the tail and reading the history arrive twice:
        # skip tail lines found in the history until the first one that is not.
        seen = set(history)
        async for line in self._tail:
            if self._filter and self._filter not in line.message and not is_notice(line):
                continue
            if seen:
                if line in seen:
                    continue
                seen = set()
            await emit(_event(line))

    async def _keep_alive(self, emit: _Emit) -> None:
        while True:
            await anyio.sleep_until(self._last_sent + self._keepalive_s)
            if anyio.current_time() - self._last_sent >= self._keepalive_s:
                await emit(KEEPALIVE)
