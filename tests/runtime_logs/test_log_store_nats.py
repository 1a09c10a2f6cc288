"""What only the NATS log store does: share lines between instances, bound its buffer,
cut messages too long for NATS. The contract itself runs in ``test_log_store.py``.
"""

from __future__ import annotations

import time

import pytest

from eventgateway.runtime.logs_nats import NatsLogStore
from tests.runtime_logs.test_log_store import (
    FN,
    SPACE,
    T0,
    line,
    messages,
    nats_connection,
    nats_store,
    next_line,
)
from tests.support.nats_kv import unique_prefix


async def test_two_instances_share_queries_and_tails():
    async with nats_connection() as nc_a, nats_connection() as nc_b:
        prefix = unique_prefix()
        nc_a.test_prefixes.append(prefix)
        a, b = nats_store(nc_a, prefix), nats_store(nc_b, prefix)
        await a.open()
        await b.open()
        try:
            tail_b = b.tail(SPACE, FN)
            await b.wait_tail_ready(SPACE, FN)
            a.append([line("from A", T0), line("elsewhere", T0, fn="other")])
            b.append([line("from B", T0 + 1)])

            seen = {(await next_line(tail_b)).message, (await next_line(tail_b)).message}
            assert seen == {"from A", "from B"}  # B's own line once, A's through NATS
            await a.flush()
            assert messages(await b.query(SPACE, FN)) == ["from A", "from B"]
            assert messages(await a.query(SPACE, FN)) == ["from A", "from B"]
            await tail_b.aclose()
        finally:
            await a.close()
            await b.close()


async def test_closing_ends_tails_after_what_they_hold_and_counts_late_appends():
    async with nats_connection() as nc:
        store = nats_store(nc)
        await store.open()
        tail, witness = store.tail(SPACE, FN), store.tail(SPACE, FN)
        store.append([line("last words")])
        # Tails get lines from the stream, a moment later, both tails from the same message.
        assert (await next_line(witness)).message == "last words"
        await store.close()
        await store.close()

        assert [item.message async for item in tail] == ["last words"]
        assert [item async for item in store.tail(SPACE, FN)] == []
        store.append([line("too late")])
        assert store.dropped_lines == 1
        assert store.published_lines == 1


async def test_lines_beyond_the_buffer_are_dropped_and_a_notice_stored():
    async with nats_connection() as nc:
        store = nats_store(nc, max_buffered_lines=10)
        for i in range(25):  # before open(): nothing is published yet
            store.append([line(f"m{i}", T0 + i)])
        assert store.dropped_lines == 15
        await store.open()
        try:
            found = await store.query(SPACE, FN, limit=100)
        finally:
            await store.close()

    assert messages(found[:10]) == [f"m{i}" for i in range(10)]
    assert found[10].message.startswith("[eventgateway] 15 log lines dropped")


async def test_a_message_too_long_for_nats_is_cut_and_marked():
    async with nats_connection() as nc:
        store = nats_store(nc)
        await store.open()
        try:
            store.append([line("\n" * nc.max_payload)])  # escaped, twice as long again
            (found,) = await store.query(SPACE, FN)
        finally:
            await store.close()

    assert found.message.endswith("[eventgateway: truncated]")
    assert store.failed_lines == 0


async def test_stream_limits_come_from_the_retention_settings():
    async with nats_connection() as nc:
        store = nats_store(nc, max_age_s=3600, max_lines_per_function=3)
        await store.open()
        try:
            store.append([line(f"m{i}", time.time()) for i in range(5)])
            assert messages(await store.query(SPACE, FN)) == ["m2", "m3", "m4"]
            info = await nc.jetstream().stream_info(store.stream)
        finally:
            await store.close()

    assert info.config.max_age == 3600
    assert info.config.subjects == [f"{store.prefix}.logs.>"]


def test_the_prefix_must_be_a_valid_stream_name():
    with pytest.raises(ValueError, match=r"prefix 'a\.b'"):
        NatsLogStore(None, prefix="a.b")  # type: ignore[arg-type]
