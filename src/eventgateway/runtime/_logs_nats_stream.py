"""The stream side of ``runtime/logs_nats.py``: the wire form of a line, reading a subject
(all of it, or a page from a sequence on), deleting old lines.

A line travels as a JSON array ``[origin, space, function, request id, timestamp, stream,
message]``; ``origin`` names the instance that wrote it. Reading a subject is the config
store's ordered-consumer scan (``store/_nats_feed.py``) delivering every message rather
than the last per subject; the stream's per-subject limit bounds how many there can be.
Reading a page is an ephemeral pull consumer asked for exactly the messages it has.

nats errors are left to the caller, which translates them where they enter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Iterator
from typing import Final

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)

from eventgateway.errors import StoreError
from eventgateway.runtime.base import LogLine, Stream
from eventgateway.store._nats_feed import scan
from eventgateway.store._nats_keys import fits

__all__ = [
    "decode_line",
    "delete_lines",
    "encode_line",
    "logs_stream_config",
    "read_page",
    "read_subject",
    "sweep",
    "translated",
]

logger = logging.getLogger(__name__)

_Wire = tuple[str, str, str, str, float, Stream, str]
_decoder = msgspec.json.Decoder(_Wire)
_TRUNCATED: Final = " [eventgateway: truncated]"
_PAGE_CONSUMER_IDLE_S: Final = 60.0  # the server removes a page consumer we failed to delete


async def read_subject(
    js: JetStreamContext, stream: str, subject: str, deadline_s: float
) -> list[Msg]:
    """Every message on ``subject`` (no wildcard needed), in stream order.

    Raises:
        TimeoutError: the consumer did not catch up within ``deadline_s``.
    """
    return await scan(js, stream, subject, deadline_s, deliver_policy=DeliverPolicy.ALL)


async def read_page(
    js: JetStreamContext, stream: str, subject: str, first_seq: int, limit: int, deadline_s: float
) -> list[Msg]:
    """The messages on ``subject`` from stream sequence ``first_seq`` on, at most ``limit``,
    in stream order: every one stored before the call, up to ``limit``.

    Raises:
        TimeoutError: NATS did not hand them over within ``deadline_s``.
    """
    if not fits(subject):
        return []  # no function has a name this long (model/validate.py)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(first_seq, 1),
        ack_policy=AckPolicy.NONE,
        inactive_threshold=_PAGE_CONSUMER_IDLE_S,
        mem_storage=True,
    )
    async with asyncio.timeout(deadline_s):
        sub = await js.pull_subscribe(subject, durable=None, stream=stream, config=config)
        name = None
        try:
            info = await sub.consumer_info()
            name = info.name
            wanted = min(limit, info.num_pending or 0)
            messages: list[Msg] = []
            while len(messages) < wanted:
                # They are there: fetch hands over what it has without waiting for more.
                messages += await sub.fetch(wanted - len(messages), timeout=deadline_s)
            return messages
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await sub.unsubscribe()
                if name is not None:
                    await js.delete_consumer(stream, name)


def encode_line(origin: str, line: LogLine, max_bytes: int) -> bytes:
    """The message of ``line``; a message too long for ``max_bytes`` is cut and marked."""
    message = line.message
    while True:
        payload = msgspec.json.encode(
            (
                origin,
                line.space,
                line.function_id,
                line.request_id,
                line.timestamp,
                line.stream,
                message,
            )
        )
        if len(payload) <= max_bytes:
            return payload
        # Escapes may make a character several bytes: cut by the excess, then check again.
        keep = max(0, len(message) - (len(payload) - max_bytes) - len(_TRUNCATED) - 64)
        message = message[:keep] + _TRUNCATED


def decode_line(data: bytes, *, skip_origin: str | None = None) -> LogLine | None:
    """The line of a message; ``None`` for one from ``skip_origin`` or not a log line."""
    try:
        origin, space, function_id, request_id, ts, stream, message = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        logger.debug("ignoring a message that is not a log line")
        return None
    if origin == skip_origin:
        return None
    return LogLine(space, function_id, request_id, ts, stream, message)


async def delete_lines(
    js: JetStreamContext, stream: str, subject: str, doomed: Collection[int], kept: Collection[int]
) -> None:
    """Delete the messages ``doomed`` of ``subject``, whose other messages are ``kept``."""
    if not kept:
        await js.purge_stream(stream, subject=subject)
    elif max(doomed) < min(kept):  # the oldest ones, as usual: one purge
        await js.purge_stream(stream, subject=subject, seq=min(kept))
    else:
        for seq in sorted(doomed):
            await js.delete_msg(stream, seq)


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """nats errors, timeouts and socket errors inside become :class:`StoreError`."""
    try:
        yield
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise StoreError(f"NATS function log store failed to {action}: {exc!r}") from exc


def logs_stream_config(
    prefix: str, *, max_age_s: float, max_lines_per_function: int, max_bytes: int, replicas: int
) -> StreamConfig:
    """The ``<prefix>-logs`` stream: its limits do the retention, on the server."""
    return StreamConfig(
        name=f"{prefix}-logs",
        subjects=[f"{prefix}.logs.>"],
        max_age=max_age_s,
        max_msgs_per_subject=max_lines_per_function,
        max_bytes=max_bytes,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        allow_direct=True,
        num_replicas=replicas,
    )


async def sweep(
    js: JetStreamContext,
    stream: str,
    subjects: str,
    *,
    cutoff: float,
    max_lines: int,
    timeout_s: float,
) -> int:
    """Delete, subject by subject, lines stamped before ``cutoff`` and all but the newest
    ``max_lines`` of each; how many were deleted. Reads every line: call it rarely."""
    with translated(f"list the functions of {stream}"):
        info = await js.stream_info(stream, subjects_filter=subjects)
    deleted = 0
    for subject in info.state.subjects or {}:
        with translated(f"read {subject}"):
            messages = await read_subject(js, stream, subject, timeout_s)
        ordered = sorted(
            (line.timestamp, msg.metadata.sequence.stream)
            for msg in messages
            if (line := decode_line(msg.data)) is not None
        )
        cut = max(len(ordered) - max_lines, 0)
        doomed = {seq for index, (ts, seq) in enumerate(ordered) if index < cut or ts < cutoff}
        if not doomed:
            continue
        kept = [seq for _, seq in ordered if seq not in doomed]
        with translated(f"delete old lines of {subject}"):
            await delete_lines(js, stream, subject, doomed, kept)
        deleted += len(doomed)
    return deleted
