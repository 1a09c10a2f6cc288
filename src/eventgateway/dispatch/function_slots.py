"""How many deliveries of one local-runtime function the dispatcher starts at once.

A function that runs here (``python``, ``nodejs``) starts at most its ``concurrency``
invocations; a delivery started beyond that would wait, leased, inside the runtime for a
worker — to be failed unattempted by a graceful stop ("the gateway went away during the
call"), or run on the old code after a redeploy. Its subscriptions share that bound, so it
is counted per function, not per subscription.

Leases are sized by :meth:`FunctionSlots.room`, but one lease may still hand out more than
the function has room for when several of its subscriptions are due together (each is
offered the same free slots). Those extra deliveries are *held* here: leased, their
leases renewed, not started until a slot of the function frees. A stopping dispatcher
starts none of them; they are left leased and come back when the lease ends (at once
after a restart of the delivery worker, which releases its predecessor's leases).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Generic, TypeVar

from eventgateway.model.runtime_provider import RuntimeLimit

__all__ = ["FunctionSlots"]

_S = TypeVar("_S")  # what the dispatcher starts: its slot for one delivery
_Key = tuple[str, str]


class FunctionSlots(Generic[_S]):
    """Running and held deliveries per local-runtime function.

    Args:
        on_room: called when a function that had no room has some again (the queue must
            look again: a waiting lease does not notice by itself).
    """

    def __init__(self, on_room: Callable[[], None]) -> None:
        self._running: collections.Counter[_Key] = collections.Counter()
        self._held: dict[_Key, collections.deque[_S]] = {}
        self._on_room = on_room

    def room(self, limit: RuntimeLimit) -> int:
        """How many more deliveries of the function a lease may hand out now.

        Read by the queue, possibly on its writer thread: reads of a Counter and a dict.
        """
        held = self._held.get(limit.function)
        return limit.concurrency - self._running[limit.function] - (len(held) if held else 0)

    def admit(self, limit: RuntimeLimit, slot: _S) -> bool:
        """Count ``slot`` as running if the function has a free slot (True), else hold it."""
        key = limit.function
        if self._running[key] < limit.concurrency:
            self._running[key] += 1
            return True
        self._held.setdefault(key, collections.deque()).append(slot)
        return False

    def release(self, limit: RuntimeLimit, *, start_held: bool = True) -> _S | None:
        """One running delivery of the function is done: the held one to start in its
        place (counted as running), if any and ``start_held``."""
        key = limit.function
        held = self._held.get(key)
        if held and start_held:
            slot = held.popleft()
            if not held:
                del self._held[key]
            return slot  # takes the freed slot: the running count stays
        was_full = self.room(limit) <= 0
        self._running[key] -= 1
        if self._running[key] <= 0:
            del self._running[key]
        if was_full:
            self._on_room()
        return None

    def drop_held(self) -> list[_S]:
        """Every held delivery, forgotten here (a stopping dispatcher starts none)."""
        dropped = [slot for held in self._held.values() for slot in held]
        self._held.clear()
        return dropped
