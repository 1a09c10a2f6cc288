"""What only the NATS store does: several instances on one bucket, compare-and-set, key
encoding, error translation. The shared contract is in ``tests/contract``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgateway.errors import ConflictError, NotFoundError, StoreError, ValidationError
from eventgateway.model.entities import Kind
from eventgateway.store._nats_keys import decode_key, encode_key, space_filter
from eventgateway.store.base import Change
from eventgateway.store.nats import NatsStore
from tests.support.nats_kv import NATS_URL, delete_buckets, require_nats, unique_prefix

DEADLINE_S = 5.0
KV_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")  # what NATS KV accepts

MakeStore = Callable[[], Awaitable[NatsStore]]


@pytest.fixture
async def make_store() -> AsyncIterator[MakeStore]:
    """Opens instances that share one bucket (one prefix), as gateway processes would."""
    require_nats()
    prefix = unique_prefix()
    opened: list[NatsStore] = []

    async def make() -> NatsStore:
        store = NatsStore([NATS_URL], prefix=prefix)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    await delete_buckets(prefix, "config")


async def next_change(changes: AsyncIterator[Change]) -> Change:
    return await asyncio.wait_for(anext(changes), DEADLINE_S)


# -- key encoding ---------------------------------------------------------------------------

kinds = st.sampled_from(["eventtypes", "functions", "subscriptions", "cors", "spaces", "keys"])


@given(kind=kinds, space=st.text(), key=st.text())
def test_any_space_and_key_make_a_valid_kv_key_that_decodes_back(
    kind: Kind, space: str, key: str
) -> None:
    kv_key = encode_key(kind, space, key)

    assert KV_KEY.fullmatch(kv_key)
    assert not kv_key.startswith(".")
    assert not kv_key.endswith(".")
    assert decode_key(kv_key) == (kind, space, key)


@given(space=st.text(), key=st.text())
def test_the_space_filter_matches_only_its_space(space: str, key: str) -> None:
    prefix = space_filter("functions", space).removesuffix("*")

    assert encode_key("functions", space, key).startswith(prefix)
    assert not encode_key("functions", space + "x", key).startswith(prefix)


@pytest.mark.parametrize(
    "kv_key", ["functions.=YQ", "nope.=YQ.=YQ", "functions.YQ.=YQ", "functions.=Y!Q.=YQ", "a.b.c.d"]
)
def test_keys_this_store_did_not_write_decode_to_none(kv_key: str) -> None:
    assert decode_key(kv_key) is None


async def test_odd_space_names_and_ids_round_trip_through_the_bucket(
    make_store: MakeStore,
) -> None:
    store = await make_store()
    odd = ["", ".", "a.b", "*", ">", "sp ace", "ünï/cödé", "GET%2Fx", "a" * 300]
    for name in odd:
        await store.create("functions", name, name, name.encode())

    for name in odd:
        assert await store.get("functions", name, name) == name.encode()
        assert await store.list("functions", name) == [name.encode()]
    assert len(await store.list_all("functions")) == len(odd)


# -- several instances ----------------------------------------------------------------------


async def test_two_instances_see_each_others_writes_through_watch(make_store: MakeStore) -> None:
    a, b = await make_store(), await make_store()
    a_changes, b_changes = a.watch(0), b.watch(0)

    from_a = await a.create("functions", "acme", "f1", b"a")
    from_b = await b.create("functions", "acme", "f2", b"b")

    assert [(await next_change(b_changes)).revision for _ in range(2)] == [from_a, from_b]
    assert [(await next_change(a_changes)).revision for _ in range(2)] == [from_a, from_b]
    await a_changes.aclose()  # type: ignore[attr-defined]
    await b_changes.aclose()  # type: ignore[attr-defined]


async def test_revisions_increase_across_instances(make_store: MakeStore) -> None:
    a, b = await make_store(), await make_store()

    revisions = [
        await a.create("functions", "acme", "f1", b"1"),
        await b.update("functions", "acme", "f1", b"2"),
        await a.create("cors", "acme", "c1", b"c"),
        await b.delete("cors", "acme", "c1"),
    ]

    assert revisions == sorted(set(revisions))
    assert (await a.snapshot()).revision == (await b.snapshot()).revision == revisions[-1]


async def test_watch_resumes_after_a_revision_written_by_another_instance(
    make_store: MakeStore,
) -> None:
    a, b = await make_store(), await make_store()
    seen = await a.create("eventtypes", "acme", "a", b"a")
    later = await a.update("eventtypes", "acme", "a", b"a2")
    changes = b.watch(seen)

    change = await next_change(changes)

    assert change == Change("eventtypes", "acme", "a", b"a2", later)
    await changes.aclose()  # type: ignore[attr-defined]


# -- compare-and-set ------------------------------------------------------------------------


def interleave(store: NatsStore, write: Callable[[], Awaitable[object]]) -> None:
    """Run ``write`` (another instance's) right after ``store`` reads a key's revision."""
    read = store._last
    done = False

    async def read_then_write(kv_key: str) -> tuple[int, bytes | None] | None:
        nonlocal done
        result = await read(kv_key)
        if not done:
            done = True
            await write()
        return result

    store._last = read_then_write  # type: ignore[method-assign]


async def test_concurrent_update_is_a_conflict_not_a_lost_update(make_store: MakeStore) -> None:
    a, b = await make_store(), await make_store()
    await a.create("functions", "acme", "f1", b"1")
    interleave(a, lambda: b.update("functions", "acme", "f1", b"from-b"))

    with pytest.raises(ConflictError, match="changed by another writer"):
        await a.update("functions", "acme", "f1", b"from-a")
    assert await b.get("functions", "acme", "f1") == b"from-b"


async def test_update_racing_a_delete_does_not_resurrect_the_key(make_store: MakeStore) -> None:
    a, b = await make_store(), await make_store()
    await a.create("functions", "acme", "f1", b"1")
    interleave(a, lambda: b.delete("functions", "acme", "f1"))

    with pytest.raises(NotFoundError):
        await a.update("functions", "acme", "f1", b"from-a")
    assert await b.get("functions", "acme", "f1") is None


async def test_two_instances_creating_one_key_yield_one_winner(make_store: MakeStore) -> None:
    a, b = await make_store(), await make_store()

    results = await asyncio.gather(
        a.create("functions", "acme", "f1", b"a"),
        b.create("functions", "acme", "f1", b"b"),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["ConflictError", "int"]


async def test_a_deleted_key_can_be_created_again(make_store: MakeStore) -> None:
    a, b = await make_store(), await make_store()
    await a.create("functions", "acme", "f1", b"1")
    await b.delete("functions", "acme", "f1")

    revision = await a.create("functions", "acme", "f1", b"again")

    assert await b.get("functions", "acme", "f1") == b"again"
    assert (await b.snapshot()).revision == revision
    with pytest.raises(ConflictError):
        await b.create("functions", "acme", "f1", b"twice")


# -- errors ---------------------------------------------------------------------------------


async def test_an_unreachable_server_is_a_store_error() -> None:
    store = NatsStore(["nats://127.0.0.1:1"], request_timeout_s=1.0)

    with pytest.raises(StoreError, match=r"NATS store failed to connect to nats://127\.0\.0\.1:1"):
        await store.open()


async def test_use_before_open_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not open"):
        await NatsStore([NATS_URL]).get("functions", "acme", "f1")


def test_a_prefix_that_cannot_name_a_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix 'a b'"):
        NatsStore([NATS_URL], prefix="a b")


# -- client text too long for a subject ------------------------------------------------------


async def test_a_name_too_long_for_a_subject_is_refused_and_the_connection_survives(
    make_store: MakeStore,
) -> None:
    # QA: one request with a 2,000-character space name (or a 3,100-character function id
    # in a read) made a subject past nats-server's 4 KiB control line; the server dropped
    # the connection, nats-py closed the client for good, and every later request failed.
    store = await make_store()
    await store.create("functions", "acme", "f", b"{}")
    long = "a" * 3100

    assert await store.get("functions", "acme", long) is None
    assert await store.list("functions", long) == []
    with pytest.raises(ValidationError, match="too long to store"):
        await store.create("functions", "acme", long, b"{}")
    with pytest.raises(NotFoundError):
        await store.update("functions", "acme", long, b"{}")

    assert await store.get("functions", "acme", "f") == b"{}"  # still connected
    await store.create("functions", "acme", "g" * 255, b"{}")  # the longest name fits
    assert await store.get("functions", "acme", "g" * 255) == b"{}"


async def test_closing_the_store_logs_no_disconnect_warning(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    # QA: every graceful stop logged "NATS disconnected (store …); reconnecting".
    store = await make_store()
    await store.create("functions", "acme", "f1", b"1")

    await store.close()

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
