"""Publishing a batch of messages to JetStream and waiting for every acknowledgement.

One accept publishes one message per delivery, then one delivery-log record per space.
nats-py's ``JetStreamContext.publish`` is a request per message (a reply token from
``os.urandom``, a future, a ``wait_for`` per message); its ``publish_async`` never resolves a
message the server refuses (2.16: the reply's error is raised inside the subscription's
callback instead of being set on the future), so a full stream would look like a timeout.
:class:`Publisher` writes the whole batch on the core client with reply subjects of one
subscription of its own, counts tokens instead of drawing random ones, and waits once,
under one deadline. Measured on the ingest path: see docs/cluster.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError, NoStreamResponseError

__all__ = ["Message", "PubAck", "Publisher"]

Message = tuple[str, bytes, dict[str, str] | None]  # subject, payload, headers

_NO_RESPONDERS = "503"  # the Status header of a request nobody subscribes to


class PubAck(msgspec.Struct, frozen=True):
    """The server's acknowledgement of a stored (or de-duplicated) message."""

    stream: str
    seq: int
    duplicate: bool = False


class _Reply(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_decode_reply = msgspec.json.Decoder(_Reply).decode


def _expire(futures: Sequence[asyncio.Future[Any]]) -> None:
    # The deadline of a publish or a confirm: one timer per call, where asyncio.wait()
    # made a waiter and a callback per future besides (~5 µs more per call, twice per
    # delivery on the worker's settle path and twice per accept).
    for future in futures:
        if not future.done():
            future.set_exception(nats.errors.TimeoutError())


class Publisher:
    """Pipelined JetStream publishes on one connection (create one per connection)."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox() + "."
        self._subscribed = False
        self._tokens = itertools.count()
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._confirms: set[str] = set()  # tokens answered by an empty reply, not a PubAck

    async def publish(self, messages: Sequence[Message], timeout_s: float) -> list[Any]:
        """Each message's :class:`PubAck`, or the exception its publish ended with.

        Every message is written before any acknowledgement is awaited, in order, on one
        connection: the stream stores them in that order. A message without an answer by
        the deadline ends with ``nats.errors.TimeoutError``. "No responders" (a stream
        electing a leader after its node died) is retried until the deadline; a retry is
        safe when the message carries a ``Nats-Msg-Id`` (the server de-duplicates it).
        """
        deadline = time.monotonic() + timeout_s
        results: list[Any] = [None] * len(messages)
        todo, delay_s = list(range(len(messages))), 0.05
        retried: list[int] = []
        while True:
            await self._publish_once(messages, todo, results, deadline)
            for i in retried:
                # A retry the deadline cut short: "no responders" is still the last answer.
                if isinstance(results[i], nats.errors.TimeoutError):
                    results[i] = NoStreamResponseError()
            retry = [i for i in todo if isinstance(results[i], NoStreamResponseError)]
            if not retry or time.monotonic() + delay_s >= deadline:
                return results
            await asyncio.sleep(delay_s)  # a leader election has no event to wait on
            todo, retried, delay_s = retry, retry, min(delay_s * 2, 0.5)

    async def confirm(self, subject: str, payload: bytes, timeout_s: float) -> None:
        """Send ``payload`` to ``subject`` and wait for the server's (empty) answer: an ack
        sent this way returns once the server has processed it (nats-py's ``ack_sync``).

        Raises:
            nats.errors.TimeoutError: no answer within ``timeout_s``.
            NoStreamResponseError: nobody listens on ``subject``.
        """
        await self._subscribe()
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting[token] = future
        self._confirms.add(token)
        timer = loop.call_later(timeout_s, _expire, (future,))
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token)
            await future  # raises what the reply carried, or TimeoutError at the deadline
        finally:
            timer.cancel()
            self._waiting.pop(token, None)
            self._confirms.discard(token)
            future.cancel()

    async def _subscribe(self) -> None:
        if self._subscribed:
            return
        # Marked before the await: nats-py queues the SUB before it first yields, so the
        # publishes of a caller arriving meanwhile follow it on the wire (subscribing twice
        # would answer the first subscription's tokens nowhere).
        self._subscribed = True
        try:
            await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)
        except BaseException:
            self._subscribed = False
            raise

    async def _publish_once(
        self, messages: Sequence[Message], todo: list[int], results: list[Any], deadline: float
    ) -> None:
        await self._subscribe()
        loop = asyncio.get_running_loop()
        waiting = self._waiting
        pending: dict[str, int] = {}
        try:
            for i in todo:
                subject, payload, headers = messages[i]
                token = str(next(self._tokens))
                waiting[token] = loop.create_future()
                pending[token] = i
                try:
                    await self._nc.publish(
                        subject, payload, reply=self._prefix + token, headers=headers
                    )
                except Exception as exc:  # e.g. disconnected: this one failed, go on
                    waiting.pop(token).cancel()
                    del pending[token]
                    results[i] = exc
            futures = [waiting[token] for token in pending]
            if futures:
                timer = loop.call_later(max(0.0, deadline - time.monotonic()), _expire, futures)
                try:
                    for future in futures:
                        if not future.done():
                            with contextlib.suppress(Exception):  # read below, per message
                                await future
                finally:
                    timer.cancel()
            for token, i in pending.items():
                future = waiting.pop(token)
                if not future.done():
                    results[i] = nats.errors.TimeoutError()
                    future.cancel()
                else:
                    results[i] = future.exception() or future.result()
        finally:
            for token in pending:  # cancelled meanwhile: forget what is still waiting
                if token in waiting:
                    waiting.pop(token).cancel()

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
        future = self._waiting.get(token)
        if future is None or future.done():
            return  # timed out (or cancelled) already
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            future.set_exception(NoStreamResponseError())
            return
        if token in self._confirms:
            future.set_result(None)
            return
        try:
            reply = _decode_reply(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(nats.errors.Error(f"unreadable publish acknowledgement: {exc}"))
            return
        if reply.error is not None:
            try:
                APIError.from_error(reply.error)  # raises the error's class (404, 503, …)
            except APIError as exc:
                future.set_exception(exc)
            return
        future.set_result(PubAck(reply.stream, reply.seq, reply.duplicate))
