"""``RemoteHttpProvider``: ``http`` function calls made by a worker process.

On two cores with a GIL, the HTTP client's CPU (~100 µs per delivery with aiohttp) is
what competes with ingest. In ``--dispatch process`` mode the gateway keeps the queue,
leasing, retries and metrics in one process — SQLite has a single writer — and only
ships each call to a supervised worker process (``call_worker.py``) over a UNIX socket:
a length-prefixed msgpack frame out, one back, many calls in flight on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pathlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call, Provider, Reply

__all__ = [
    "CallReply",
    "CallRequest",
    "RemoteHttpProvider",
    "answer",
    "frames",
    "read_frame",
    "unwrap",
    "write_frame",
]

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!I")
_MAX_FRAME = 16 * 1024 * 1024


class CallRequest(msgspec.Struct, array_like=True):
    """One call for the worker."""

    id: int
    function_id: str
    url: str
    body: bytes
    content_type: str
    headers: list[tuple[str, str]]
    timeout_s: float
    sync: bool = False


class CallReply(msgspec.Struct, array_like=True):
    """The worker's answer: a reply, or an error (``status`` may still be set)."""

    id: int
    status: int = 0
    headers: list[tuple[str, str]] = []
    body: bytes = b""
    error: str | None = None
    retryable: bool = True
    retry_after_s: float | None = None
    body_excerpt: str = ""  # ProviderError.body_excerpt: a failed handler's error payload


_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(CallRequest)
_reply_decoder = msgspec.msgpack.Decoder(CallReply)


def write_frame(writer: asyncio.StreamWriter, message: Any) -> None:
    """Queue one length-prefixed msgpack frame."""
    payload = _encoder.encode(message)
    writer.write(_HEADER.pack(len(payload)) + payload)


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One frame's payload; ``IncompleteReadError`` at EOF."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > _MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over the {_MAX_FRAME} byte limit")
    return await reader.readexactly(size)


def decode_request(payload: bytes) -> CallRequest:
    return _request_decoder.decode(payload)


_T = TypeVar("_T")
_R = TypeVar("_R", bound=CallReply)


async def frames(
    reader: asyncio.StreamReader, decode: Callable[[bytes], _T], peer: str
) -> AsyncIterator[_T]:
    """Each decoded frame until the connection ends; a malformed one is logged and skipped."""
    while True:
        try:
            payload = await read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        try:
            yield decode(payload)
        except (msgspec.DecodeError, ValueError):
            logger.error("dropping a malformed frame from the %s", peer)


async def answer(cls: type[_R], request_id: int, pending: Awaitable[Reply]) -> _R:
    """``pending``'s reply, or its :class:`ProviderError`, as a ``cls`` message."""
    try:
        reply = await pending
    except ProviderError as exc:
        return cls(
            id=request_id,
            status=exc.status or 0,
            error=exc.message,
            retryable=exc.retryable,
            retry_after_s=exc.retry_after_s,
            body_excerpt=exc.body_excerpt,
        )
    return cls(id=request_id, status=reply.status, headers=list(reply.headers), body=reply.body)


def unwrap(reply: CallReply) -> Reply:
    """The reply a message carries.

    Raises:
        ProviderError: it carries an error instead.
    """
    if reply.error is not None:
        raise ProviderError(
            reply.error,
            retryable=reply.retryable,
            status=reply.status or None,
            retry_after_s=reply.retry_after_s,
            body_excerpt=reply.body_excerpt,
        )
    return Reply(status=reply.status, body=reply.body, headers=tuple(reply.headers))


def _expire(future: asyncio.Future[CallReply]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class RemoteHttpProvider(Provider):
    """Calls ``http`` functions through the call worker listening on ``socket_path``."""

    def __init__(
        self,
        socket_path: pathlib.Path,
        *,
        connect_timeout_s: float = 10.0,
        answer_margin_s: float = 5.0,
    ) -> None:
        self._path = socket_path
        self._connect_timeout_s = connect_timeout_s
        # How long past a call's own timeout to wait for the worker before giving up.
        self._answer_margin_s = answer_margin_s
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[CallReply]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._connect_timeout_s
            while True:
                try:
                    reader, writer = await asyncio.open_unix_connection(str(self._path))
                    break
                except OSError as exc:
                    if loop.time() >= deadline:
                        raise ProviderError(
                            f"the delivery worker at {self._path} is not reachable: {exc}"
                        ) from exc
                    await asyncio.sleep(0.05)  # the worker is (re)starting; bounded wait
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read_replies(reader))
            return writer

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                reply = _reply_decoder.decode(await read_frame(reader))
                future = self._pending.pop(reply.id, None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, msgspec.DecodeError):
            logger.warning("connection to the delivery worker lost; calls in flight fail")
        finally:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
            pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(
                        ProviderError("the delivery worker went away during the call")
                    )

    async def call(self, function: Function, call: Call) -> Reply:
        url = function.provider.get("url")
        if not isinstance(url, str):
            raise ProviderError(
                f"function {function.function_id!r} has no provider.url", retryable=False
            )
        writer = await self._connection()
        request_id = next(self._ids)
        future: asyncio.Future[CallReply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        write_frame(
            writer,
            CallRequest(
                id=request_id,
                function_id=function.function_id,
                url=url,
                body=call.body,
                content_type=call.content_type,
                headers=list(call.headers),
                timeout_s=call.timeout_s,
                sync=call.sync,
            ),
        )
        # The worker enforces the call's timeout; the margin covers a stuck worker. A timer
        # rather than wait_for, which would wrap every call in a task of its own.
        timer = asyncio.get_running_loop().call_later(
            call.timeout_s + self._answer_margin_s, _expire, future
        )
        try:
            reply = await future
        except TimeoutError as exc:
            self._pending.pop(request_id, None)
            raise ProviderError(
                f"function {function.function_id!r}: no answer from the delivery worker"
            ) from exc
        finally:
            timer.cancel()
        return unwrap(reply)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
