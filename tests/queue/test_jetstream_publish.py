"""``Publisher``: pipelined JetStream publishes against the real NATS server.

What the queue's tests show only indirectly: acks come back in order with their stream
sequences, a refusal is the server's error (not a timeout), a duplicate says so, nobody
answering is a timeout at the deadline, and "no responders" is retried until a stream
appears. Every stream made here is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from eventgateway.queue.jetstream_publish import PubAck, Publisher
from tests.queue.kit import NATS_URL, require_nats


@pytest.fixture
async def nc() -> AsyncIterator[Client]:
    require_nats()
    client = await nats.connect(NATS_URL)
    yield client
    await client.close()


@pytest.fixture
async def stream(nc: Client) -> AsyncIterator[str]:
    """A fresh stream on ``<name>.>``, limited to 3 messages (new ones refused)."""
    name = f"egtest-pub-{uuid.uuid4().hex[:10]}"
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name=name, subjects=[f"{name}.>"], max_msgs=3, discard=DiscardPolicy.NEW)
    )
    yield name
    with contextlib.suppress(APIError):
        await js.delete_stream(name)


async def test_a_batch_is_stored_in_order_and_each_message_gets_its_ack(
    nc: Client, stream: str
) -> None:
    publisher = Publisher(nc)
    messages = [(f"{stream}.m", f"m{n}".encode(), None) for n in range(3)]

    acks = await publisher.publish(messages, 5.0)

    assert acks == [PubAck(stream, 1), PubAck(stream, 2), PubAck(stream, 3)]
    stored = await nc.jetstream().get_msg(stream, 2)
    assert stored.data == b"m1"


async def test_a_refused_message_gets_the_servers_error_at_once(nc: Client, stream: str) -> None:
    publisher = Publisher(nc)
    messages = [(f"{stream}.m", b"x", None) for _ in range(4)]  # one past max_msgs

    started = time.monotonic()
    acks = await publisher.publish(messages, 5.0)

    assert [type(a) for a in acks[:3]] == [PubAck] * 3
    assert isinstance(acks[3], APIError)
    assert acks[3].err_code == 10077  # maximum messages exceeded
    assert time.monotonic() - started < 2.5  # an answer, not the 5 s deadline


async def test_a_repeated_message_id_is_acknowledged_as_a_duplicate(
    nc: Client, stream: str
) -> None:
    publisher = Publisher(nc)
    message = (f"{stream}.m", b"x", {"Nats-Msg-Id": "same"})

    first, again = await publisher.publish([message, message], 5.0)

    assert first == PubAck(stream, 1)
    assert again == PubAck(stream, 1, duplicate=True)


async def test_a_message_nobody_answers_times_out_at_the_deadline(nc: Client) -> None:
    subject = f"egtest-silent-{uuid.uuid4().hex[:10]}"
    await nc.subscribe(subject)  # receives, never replies: not a stream
    publisher = Publisher(nc)

    started = time.monotonic()
    [outcome] = await publisher.publish([(subject, b"x", None)], 0.3)

    assert isinstance(outcome, nats.errors.TimeoutError)
    assert 0.25 < time.monotonic() - started < 2.0


async def test_no_responders_is_retried_until_a_stream_answers(nc: Client) -> None:
    name = f"egtest-late-{uuid.uuid4().hex[:10]}"
    js = nc.jetstream()
    publisher = Publisher(nc)

    async def create_later() -> None:
        await asyncio.sleep(0.2)  # the "election": no stream for a moment
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))

    creating = asyncio.create_task(create_later())
    try:
        [ack] = await publisher.publish([(f"{name}.m", b"x", None)], 5.0)
        await creating
        assert ack == PubAck(name, 1)
    finally:
        with contextlib.suppress(APIError):
            await js.delete_stream(name)


async def test_no_responders_past_the_deadline_is_the_outcome(nc: Client) -> None:
    publisher = Publisher(nc)

    [outcome] = await publisher.publish([(f"egtest-none-{uuid.uuid4().hex}", b"x", None)], 0.2)

    assert isinstance(outcome, NoStreamResponseError)


async def test_confirm_acks_a_pulled_message_once_the_server_processed_it(
    nc: Client, stream: str
) -> None:
    js = nc.jetstream()
    await js.publish(f"{stream}.m", b"x")
    pull = await js.pull_subscribe(f"{stream}.m", durable="c1", stream=stream)
    [msg] = await pull.fetch(1, timeout=5)
    assert (await pull.consumer_info()).num_ack_pending == 1

    await Publisher(nc).confirm(msg.reply, b"", 5.0)

    # Answered only after the ack was applied: nothing is pending any more.
    info = await pull.consumer_info()
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 1)


async def test_confirm_without_a_listener_is_no_responders(nc: Client) -> None:
    with pytest.raises(NoStreamResponseError):
        await Publisher(nc).confirm(f"egtest-none-{uuid.uuid4().hex}", b"", 2.0)


async def test_confirm_without_an_answer_times_out(nc: Client) -> None:
    subject = f"egtest-silent-{uuid.uuid4().hex[:10]}"
    await nc.subscribe(subject)

    with pytest.raises(nats.errors.TimeoutError):
        await Publisher(nc).confirm(subject, b"", 0.2)
