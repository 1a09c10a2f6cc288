"""Connecting to NATS and creating streams for
:class:`~eventgateway.queue.jetstream.JetStreamQueue`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import nats
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError

__all__ = ["connect", "ensure_consumer", "ensure_stream", "scan", "scan_from"]

logger = logging.getLogger(__name__)

_STREAM_NAME_IN_USE = 10058  # add_stream of an existing stream with another config
# What nats-server 2.9 answers when another instance created the same stream a moment
# earlier (seen with two gateways starting together): the stream is there, update it.
_SUBJECTS_OVERLAP = 10065


async def connect(
    servers: Sequence[str], *, active: Callable[[], bool], lost: Callable[[str], None]
) -> Client:
    """Connect, failing after a few tries; once connected, reconnect forever.

    While ``active()`` (the owner is open, not closing the client itself), a disconnect
    is logged, and a close (nats-py's answer to most server ``-ERR``s, for good) is
    reported to ``lost`` (:mod:`eventgateway.fatal`).

    Raises nats-py's errors (the caller translates them).
    """

    async def disconnected() -> None:
        if active() and not nc.is_closed:  # closed for good: closed() says so
            logger.warning("disconnected from NATS; reconnecting (accepts answer 503 meanwhile)")

    async def closed() -> None:
        if active():
            lost(f"the delivery queue's NATS connection was closed for good ({nc.last_error})")

    nc = await nats.connect(
        servers=list(servers),
        name="eventgateway-queue",
        connect_timeout=2,
        allow_reconnect=True,
        # Bounded while opening, so a gateway started without NATS fails at once
        # instead of hanging.
        max_reconnect_attempts=3,
        reconnect_time_wait=0.5,
        error_cb=_log_error,
        disconnected_cb=disconnected,
        reconnected_cb=_log_reconnected,
        closed_cb=closed,
    )
    # Once connected, an outage is waited out: accepts answer 503 meanwhile.
    nc.options["max_reconnect_attempts"] = -1
    return nc


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or apply ``config`` to it if it exists with other limits."""
    try:
        await js.add_stream(config)
    except APIError as exc:
        if exc.err_code not in (_STREAM_NAME_IN_USE, _SUBJECTS_OVERLAP):
            raise
        await js.update_stream(config)


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or give an existing one ``config``'s
    ``max_ack_pending``; its other settings stay as the first instance made them."""
    assert config.durable_name is not None
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    if info.config.max_ack_pending != config.max_ack_pending:
        # An upgrade, or an operator's new bound: nats-server 2.9 updates it in place.
        logger.info(
            "consumer %s: max_ack_pending %s -> %s",
            config.durable_name,
            info.config.max_ack_pending,
            config.max_ack_pending,
        )
        updated = dataclasses.replace(info.config, max_ack_pending=config.max_ack_pending)
        await js.add_consumer(stream, updated)


async def _log_error(exc: Exception) -> None:
    logger.warning("NATS connection error: %s", exc)


async def _log_reconnected() -> None:
    logger.info("reconnected to NATS")


async def scan(
    js: JetStreamContext, stream: str, subject: str, *, limit: int, batch: int = 512
) -> list[tuple[int, str, bytes]]:
    """Every message of ``stream`` on ``subject`` (wildcards allowed), oldest first.

    Reads through a short-lived ephemeral consumer (no acks, deleted afterwards), at most
    ``limit`` messages: what is in the stream when the scan starts, so it ends.
    Raises nats-py's errors (the caller translates them).
    """
    messages, _ = await scan_from(js, stream, subject, limit=limit, batch=batch)
    return messages


async def scan_from(
    js: JetStreamContext,
    stream: str,
    subject: str,
    *,
    limit: int,
    start: datetime | None = None,
    batch: int = 512,
) -> tuple[list[tuple[int, str, bytes]], bool]:
    """As :func:`scan`, from the first message the server stored at or after ``start``
    (all of them without it); and whether it stopped at ``limit`` with more to read."""
    by_time = start is not None
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_TIME if by_time else DeliverPolicy.ALL,
            opt_start_time=start,
            inactive_threshold=30.0,  # the server removes it if we vanish mid-scan
            mem_storage=True,
        ),
    )
    name = None
    try:
        info = await sub.consumer_info()
        name = info.name
        pending = info.num_pending or 0
        remaining = min(pending, limit)
        out: list[tuple[int, str, bytes]] = []
        while remaining > 0:
            msgs = await sub.fetch(min(remaining, batch), timeout=5.0)
            remaining -= len(msgs)
            out += [(m.metadata.sequence.stream, m.subject, m.data) for m in msgs]
        return out, pending > limit
    finally:
        await sub.unsubscribe()
        if name is not None:
            try:
                await js.delete_consumer(stream, name)
            except Exception as exc:  # it expires on its own (inactive_threshold)
                logger.debug("could not delete the scan consumer %s: %s", name, exc)
