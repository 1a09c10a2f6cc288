"""``LogStore.forget_space`` on every store (the contract fixture of ``test_log_store.py``):
a deleted space's function logs are gone, buffered lines included; other spaces keep
theirs (docs/security.md: function logs never pass to the name's next owner)."""

from __future__ import annotations

import asyncio

from tests.runtime_logs import test_log_store as contract
from tests.runtime_logs.test_log_store import FN, SPACE, T0, line, messages

store = contract.store  # the same fixture, over memory, SQLite and NATS

OTHER = "other"


async def test_forget_space_deletes_every_function_of_the_space_and_nothing_else(store) -> None:
    store.append([line("a", T0), line("b", T0 + 1, fn="second")])
    store.append([line("kept", T0, space=OTHER), line("kept too", T0, fn="second", space=OTHER)])

    await store.forget_space(SPACE)  # no flush first: buffered lines go too

    assert await store.query(SPACE, FN) == []
    assert await store.query(SPACE, "second") == []
    assert messages(await store.query(OTHER, FN)) == ["kept"]
    assert messages(await store.query(OTHER, "second")) == ["kept too"]


async def test_forget_space_is_idempotent_and_later_lines_are_kept(store) -> None:
    store.append([line("old", T0)])
    await store.forget_space(SPACE)
    await store.forget_space(SPACE)
    await store.forget_space("never-used")

    store.append([line("new owner", T0 + 5)])

    assert messages(await store.query(SPACE, FN)) == ["new owner"]


async def test_forget_space_ends_the_spaces_open_tails(store) -> None:
    # An old owner's follow must not go on to show what the name's next owner writes.
    doomed = store.tail(SPACE, FN)
    kept = store.tail(OTHER, FN)

    await store.forget_space(SPACE)
    store.append([line("new owner", T0 + 5), line("other space", T0 + 5, space=OTHER)])

    async with asyncio.timeout(10):
        assert [entry.message async for entry in doomed] == []
        assert (await anext(kept)).message == "other space"
    await kept.aclose()
