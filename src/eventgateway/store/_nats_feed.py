"""Reading a KV bucket's stream through ordered consumers, for :mod:`eventgateway.store.nats`.

Both reads the store needs are one ephemeral ordered push consumer on the bucket's stream:
:func:`scan` asks for the last message of every matching subject and stops once the
consumer reports nothing pending; :func:`follow` starts after a stream sequence and runs
until stopped. Ordered consumers recreate themselves after a gap or a reconnect, from the
last sequence they delivered, so a follow never skips or repeats a change.

nats errors are left to the caller, which translates them where they enter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Final

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from eventgateway.store._nats_keys import fits
from eventgateway.store.base import Change

__all__ = ["KV_OPERATION", "follow", "is_marker", "scan", "wake_watcher"]

KV_OPERATION: Final = "KV-Operation"  # the header of a KV delete or purge marker
_MARKER_REASON: Final = "Nats-Marker-Reason"  # server-placed markers (nats-server 2.11+)
# nats-py recreates an ordered consumer after two missed idle heartbeats. Its default of
# 5 s made a watch resume 10-15 s after a NATS restart (the consumer lives in the
# server's memory, so a restart loses it); at 1 s it resumes within a few seconds, for
# one small heartbeat message a second while the bucket is idle.
_HEARTBEAT_S: Final = 1.0
# An idle consumer the client forgot (crash, lost connection) is removed by the server.
_INACTIVE_THRESHOLD_S: Final = 60.0

OnMessage = Callable[[Msg], Awaitable[None]]


async def follow(
    js: JetStreamContext, stream: str, subject: str, after_sequence: int, on_message: OnMessage
) -> JetStreamContext.PushSubscription:
    """Call ``on_message`` for every message above ``after_sequence``, in order, until unsubscribed.

    ``on_message`` may block: the consumer's flow control then holds the server back, which
    bounds what waits in this process.
    """
    if not fits(subject):
        raise nats.errors.BadSubjectError  # see fits: it would close the connection
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(after_sequence, 0) + 1,
    )
    return await js.subscribe(
        subject,
        stream=stream,
        cb=on_message,
        config=config,
        ordered_consumer=True,
        idle_heartbeat=_HEARTBEAT_S,
        inactive_threshold=_INACTIVE_THRESHOLD_S,
    )


async def scan(
    js: JetStreamContext,
    stream: str,
    subject: str,
    deadline_s: float,
    *,
    idle_s: float | None = None,
    deliver_policy: DeliverPolicy = DeliverPolicy.LAST_PER_SUBJECT,
) -> list[Msg]:
    """The last message of every subject matching ``subject``, in stream order.

    ``deliver_policy=DeliverPolicy.ALL`` reads every message instead (a subject's log).

    Writes that land while the scan runs are included too, so the result is the state at
    the sequence of its last message. With ``idle_s``, a scan that receives nothing for
    that long asks the server whether anything is pending, and ends if not: on a stream
    that is purged meanwhile (an object store), nats-server 2.9.10 can move the consumer
    past messages it never sent (its PR #3838), the one that would end the scan included.

    Raises:
        TimeoutError: the consumer did not catch up within ``deadline_s``.
    """
    if not fits(subject):
        return []  # client text no name of ours is this long (see fits)
    # Unbounded on purpose: the result holds every message anyway, and the consumer's
    # flow control keeps the server from running ahead of this loop.
    received: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        received.put_nowait(msg)

    async with asyncio.timeout(deadline_s):
        sub = await js.subscribe(
            subject,
            stream=stream,
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=deliver_policy,
            inactive_threshold=_INACTIVE_THRESHOLD_S,
        )
        try:
            info = await sub.consumer_info()
            delivered = info.delivered.consumer_seq if info.delivered is not None else 0
            if not info.num_pending and not delivered and received.empty():
                return []
            messages: list[Msg] = []
            while True:
                try:
                    msg = await asyncio.wait_for(received.get(), idle_s)
                except TimeoutError:  # only with idle_s
                    if not (await sub.consumer_info()).num_pending and received.empty():
                        return messages
                    continue
                messages.append(msg)
                if msg.metadata.num_pending == 0:
                    return messages
        finally:
            await sub.unsubscribe()


def is_marker(headers: dict[str, str] | None) -> bool:
    """Whether a KV message is a delete or purge marker rather than a value."""
    if not headers:
        return False
    return headers.get(KV_OPERATION) in ("DEL", "PURGE") or _MARKER_REASON in headers


def wake_watcher(queue: asyncio.Queue[Change | None]) -> None:
    """Put the end-of-watch marker in, dropping buffered changes if the buffer is full."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            with suppress(asyncio.QueueEmpty):
                queue.get_nowait()
