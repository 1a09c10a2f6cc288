"""The connections of the lean HTTP/1.1 client: one keep-alive connection, and their pool.

:class:`Connection` is an ``asyncio.Protocol`` that sends one request at a time and parses
the reply with ``httptools`` (llhttp): no streams, no task, one future per request. It
decodes ``gzip``/``deflate`` bodies and caps the decoded body at :data:`MAX_REPLY_BYTES`.

:class:`ConnectionPool` bounds the open connections (callers wait for a free slot), keeps
idle ones per ``(scheme, host, port)`` and hands out the most recently used first (LIFO:
the warmest, and the least likely to have been closed by the server), and closes the ones
idle for longer than ``idle_timeout_s`` with a single timer for the whole pool.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import cast

import httptools

from eventgateway.providers.base import MAX_REPLY_BYTES, Reply

__all__ = [
    "MAX_REPLY_HEAD_BYTES",
    "Connection",
    "ConnectionClosedError",
    "ConnectionPool",
    "PoolKey",
    "ReplyError",
    "ReplyTooLargeError",
]


PoolKey = tuple[str, str, int]  # scheme, host, port
# A reply's status line and headers together, at most (the body has its own cap). An
# endless header section used to grow the process without bound (QA: 3 GB in 11 s).
MAX_REPLY_HEAD_BYTES = 64 * 1024


class ReplyError(Exception):
    """Raised when a reply is not valid HTTP/1.1 or its body cannot be decoded."""


class ReplyTooLargeError(Exception):
    """Raised when a reply body (after decoding) is larger than the request's limit
    (:data:`MAX_REPLY_BYTES` unless it asked for less)."""

    def __init__(self, status: int, limit: int = MAX_REPLY_BYTES) -> None:
        super().__init__(f"the reply has more than {limit} bytes")
        self.status = status
        self.limit = limit


class ConnectionClosedError(ConnectionError):
    """Raised when the server closes the connection before its reply is complete."""


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: :meth:`request` sends a request and waits for its reply.

    ``received`` tells whether any byte of the current reply arrived: a reused connection
    that fails before any did was most likely closed by the server while idle.
    """

    def __init__(self, key: PoolKey, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.closed = False
        self.keep_alive = False
        self.received = False
        self.idle_since = 0.0
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Reply] | None = None
        self._head_size = 0  # bytes received while the reply's head was not complete
        self._max_body = MAX_REPLY_BYTES
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._framed = False  # Content-Length or chunked: else the body ends at EOF
        self._encoding = b""
        self._decoder: zlib._Decompress | None = None
        self._headers_done = False

    # -- used by the client -----------------------------------------------------------------

    def request(self, data: bytes, max_body: int = MAX_REPLY_BYTES) -> asyncio.Future[Reply]:
        """Send ``data`` (a whole request); the future is the reply or the error
        (:class:`ReplyTooLargeError` for a body over ``max_body`` bytes, decoded)."""
        waiter: asyncio.Future[Reply] = self._loop.create_future()
        if self.closed or self._transport is None:
            waiter.set_exception(ConnectionClosedError("the connection was closed"))
            return waiter
        self.received = False
        self.keep_alive = False
        self._head_size = 0
        self._max_body = max_body
        self._waiter = waiter
        # No drain: the request is in memory already, and the call's deadline bounds a
        # server that does not read it.
        self._transport.write(data)
        return waiter

    def close(self) -> None:
        """Close gracefully (TLS sends its close_notify)."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping what is buffered: after a timeout or an error."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ReplyError(f"invalid HTTP reply: {exc}"), exc)
            return
        except httptools.HttpParserUpgrade as exc:  # never asked for: as unusable as garbage
            self._fail(ReplyError("the server switched protocols (101) unasked"), exc)
            return
        if not self._headers_done:
            # Counted here, not per header: httptools gathers one header's value whole
            # before it calls on_header, so an endless value never reaches it.
            self._head_size += len(data)
            if self._head_size > MAX_REPLY_HEAD_BYTES:
                error = ReplyError(f"the reply's headers pass {MAX_REPLY_HEAD_BYTES} bytes")
                self._fail(error, None)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the reply

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed:
            self.on_message_complete()  # a body without a length ends when the server closes
        else:
            error = ConnectionClosedError(
                "the server closed the connection before a complete reply"
                + (f" ({exc})" if exc is not None else "")
            )
            self._fail(error, exc)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            self.abort()  # bytes nobody asked for: this connection cannot be trusted again
        self._reset()

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self._framed = True
        elif lowered == b"content-encoding":
            self._encoding = value.strip().lower()
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._waiter is None or self._waiter.done() or self._status < 200:
            return
        if self._encoding in (b"gzip", b"x-gzip", b"deflate"):
            try:
                body = self._decode(body)
            except zlib.error as exc:
                self._fail(ReplyError(f"cannot decode the {self._encoding!r} reply: {exc}"), exc)
                return
        self._take(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done() or self._status < 200:
            return  # 1xx (100 Continue): interim, the real reply follows
        if self._decoder is not None:
            try:
                self._take(self._decoder.flush())
            except zlib.error as exc:
                self._fail(ReplyError(f"cannot decode the {self._encoding!r} reply: {exc}"), exc)
                return
            if waiter.done():
                return
        self.keep_alive = self._parser.should_keep_alive() and not self.closed
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._waiter = None
        waiter.set_result(Reply(status=self._status, body=body, headers=tuple(self._headers)))

    # -- helpers ------------------------------------------------------------------------------

    def _decode(self, data: bytes) -> bytes:
        if self._decoder is None:
            if self._encoding == b"deflate":
                # "deflate" is meant to be zlib-wrapped; some servers send it raw.
                head = int.from_bytes(data[:2], "big")
                wrapped = len(data) >= 2 and head & 0x0F00 == 0x0800 and head % 31 == 0
                self._decoder = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            else:
                self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        # One byte past the room left: decoding stops there, so a small bomb stays small.
        return self._decoder.decompress(data, self._max_body - self._size + 1)

    def _take(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max_body:
            self._fail(ReplyTooLargeError(self._status, self._max_body), None)
            return
        if data:
            self._chunks.append(data)

    def _fail(self, error: Exception, cause: BaseException | None) -> None:
        error.__cause__ = cause
        waiter = self._waiter
        self._waiter = None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class ConnectionPool:
    """At most ``max_connections`` open connections; idle ones kept per key, reused LIFO.

    A caller :meth:`acquire`\\ s either an idle connection or a reserved slot for a new one,
    and gives it back with :meth:`release` (or :meth:`release_slot` if it opened none).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_connections: int, idle_timeout_s: float
    ) -> None:
        self._loop = loop
        self._max = max_connections
        self._idle_timeout_s = idle_timeout_s
        self._open = 0  # connections open or being opened, idle or not
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._all: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    async def acquire(self, key: PoolKey) -> Connection | None:
        """An idle connection to ``key``, or ``None``: a slot is reserved to open one."""
        while True:
            stack = self._idle.get(key)
            while stack:
                connection = stack.pop()
                if not connection.closed:
                    return connection
                self._forget(connection)  # closed by the server while idle
            if self._open < self._max:
                self._open += 1
                return None
            if self._evict_one():
                continue
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: pass the turn on
                else:
                    self._waiters.remove(waiter)
                raise

    def adopt(self, connection: Connection) -> None:
        """Track a connection just opened in a reserved slot (so :meth:`close` closes it)."""
        self._all.add(connection)

    def release(self, connection: Connection, *, reuse: bool) -> None:
        """Give a connection back: kept idle if ``reuse`` and still open, else closed."""
        if reuse and not connection.closed and not self._closed:
            connection.idle_since = self._loop.time()
            stack = self._idle.get(connection.key)
            if stack is None:
                self._idle[connection.key] = [connection]
            else:
                stack.append(connection)
            if self._sweep is None:
                self._sweep = self._loop.call_at(
                    connection.idle_since + self._idle_timeout_s, self._expire
                )
        else:
            connection.abort()
            self._forget(connection)
        if self._waiters:
            self._wake()

    def retire(self, connection: Connection) -> None:
        """Close a connection but keep its slot, for the connection that replaces it."""
        connection.abort()
        self._all.discard(connection)

    def release_slot(self) -> None:
        """Give back a slot :meth:`acquire` reserved for a connection that was not opened."""
        self._open -= 1
        if self._waiters:
            self._wake()

    def close(self) -> None:
        """Close every connection, idle or in use (their calls fail)."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()

    def _forget(self, connection: Connection) -> None:
        self._all.discard(connection)
        self._open -= 1

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict_one(self) -> bool:
        # The pool is full and this key has no idle connection: close another key's oldest.
        for stack in self._idle.values():
            if stack:
                victim = stack.pop(0)
                victim.close()
                self._forget(victim)
                return True
        return False

    def _expire(self) -> None:
        self._sweep = None
        cutoff = self._loop.time() - self._idle_timeout_s
        oldest: float | None = None
        freed = 0
        for key in list(self._idle):
            stack = self._idle[key]
            # Stacks grow at the end, so the oldest idle connections are at the front.
            keep = [c for c in stack if not c.closed and c.idle_since > cutoff]
            for connection in stack:
                if connection.closed or connection.idle_since <= cutoff:
                    connection.close()
                    self._forget(connection)
                    freed += 1
            if keep:
                self._idle[key] = keep
                oldest = keep[0].idle_since if oldest is None else min(oldest, keep[0].idle_since)
            else:
                del self._idle[key]
        if oldest is not None:
            self._sweep = self._loop.call_at(oldest + self._idle_timeout_s, self._expire)
        for _ in range(freed):
            if not self._waiters:
                break
            self._wake()
