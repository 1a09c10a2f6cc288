"""The hand-off over the real link (``queue/sqlite_handoff.py``): the gateway's accepts hand
fresh deliveries to the worker's :class:`DispatchHost` within the credit it grants — a real
UNIX socket, a real SQLite file shared by both queues, a real HTTP receiver."""

from __future__ import annotations

import pathlib

import pytest

from eventgateway.events.codec import encode_event
from eventgateway.queue.base import Accepted
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.queue.sqlite_handoff import HandedEvent
from tests.dispatch.test_link import (
    DEADLINE_S,
    SPACE,
    eventually,
    function,
    rig,
    routing,
    sock_dir,
    sub,
    to,
)
from tests.queue.kit import event
from tests.support.receiver import Receiver

__all__ = ["sock_dir"]  # a fixture, used by name

WINDOW = 8  # the rig's worker runs with concurrency=8: the credit it grants


def received_ids(receiver: Receiver) -> list[str]:
    return sorted(call.json()["id"] for call in receiver.calls_to("/fn"))


async def test_accepts_hand_fresh_deliveries_to_the_worker_within_its_credit(
    receiver: Receiver, tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    db = tmp_path / "queue.db"
    config = routing([function("fn", url=receiver.url("/fn"))], [sub("s1", "fn"), sub("s2", "fn")])
    async with rig(db, sock_dir, config) as r:
        gateway = SqliteQueue(db)  # the gateway process's handle on the file
        await gateway.open()
        try:
            # No wake-ups: only what is handed over reaches the worker by itself.
            gateway.handoff = r.link
            await eventually(lambda: r.link.credit == WINDOW, "the worker's credit")

            await gateway.accept([Accepted(event("e1"), [to("s1", "fn")])])
            await receiver.wait_for(1, "/fn", timeout_s=DEADLINE_S)
            await eventually(lambda: r.hooks.states() == ["delivered"], "e1 settled")
            # Leased out by the worker: the credit is back.
            await eventually(lambda: r.link.credit == WINDOW, "the credit back")
            view = await gateway.get_event(SPACE, "e1")
            assert view is not None
            assert [d.state for d in view.deliveries] == ["delivered"]

            # Ten deliveries do not fit in eight: written due, and seen once woken.
            await gateway.accept(
                [Accepted(event(f"b{n}"), [to("s1", "fn"), to("s2", "fn")]) for n in range(5)]
            )
            with pytest.raises(TimeoutError):
                await receiver.wait_for(2, "/fn", timeout_s=0.3)
            assert r.link.credit == WINDOW
            r.link.wake()
            await receiver.wait_for(11, "/fn", timeout_s=DEADLINE_S)
            await eventually(lambda: len(r.hooks.states()) == 11, "all settled")
            assert set(r.hooks.states()) == {"delivered"}
        finally:
            await gateway.close()


async def test_a_ticket_of_an_earlier_connection_hands_nothing(
    receiver: Receiver, tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    db = tmp_path / "queue.db"
    config = routing([function("fn", url=receiver.url("/fn"))], [sub("s1", "fn")])
    async with rig(db, sock_dir, config) as r:
        await eventually(lambda: r.link.credit == WINDOW, "the worker's credit")
        ticket = r.link.reserve(1)
        assert ticket != 0
        assert r.link.credit == WINDOW - 1
        assert r.link.reserve(WINDOW) == 0  # more than is left

        writer = r.host._writer  # the worker's end of the link: drop it, as a restart would
        assert writer is not None
        sent = r.routings_sent
        writer.close()
        await eventually(lambda: r.routings_sent > sent, "relinked (routing sent again)")
        await eventually(lambda: r.link.credit == WINDOW, "fresh credit")

        # A restarted worker released every lease at its start: rows reserved before it
        # must not reach it as well.
        ghost = HandedEvent(
            encode_event(event("ghost")), 0.0, 9e9, [(999, SPACE, "s1", "fn", None)]
        )
        r.link.hand(ticket, [ghost], 1)
        assert r.link.credit == WINDOW

        gateway = SqliteQueue(db)
        await gateway.open()
        try:
            gateway.handoff = r.link
            await gateway.accept([Accepted(event("e1"), [to("s1", "fn")])])
            await eventually(lambda: r.hooks.states() == ["delivered"], "e1 settled")
        finally:
            await gateway.close()
        assert received_ids(receiver) == ["e1"]
        assert r.queue.handed() == 0
