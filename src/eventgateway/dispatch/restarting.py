"""Trying again after a failure: a growing pause, and a dispatcher that is restarted.

:class:`Backoff` is the pause between tries, shared by the dispatcher's lease (a store
that is busy or down), :func:`run_restarting` and the delivery worker's supervisor.

:func:`run_restarting` keeps a dispatcher of the accepting process (``--dispatch inline``
and ``process``) running: a dispatcher that dies of an error is logged and started again
after a pause, as the supervisor restarts a delivery worker whose dispatcher died
(``call_worker.py`` exits non-zero then). Either way the Events API keeps accepting and
delivery resumes; the deliveries the dead dispatcher had in flight come back when their
leases run out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventgateway.dispatch.dispatcher import Dispatcher

__all__ = ["Backoff", "run_restarting"]

logger = logging.getLogger(__name__)


class Backoff:
    """Pauses that double from ``first_s`` up to ``max_s``; :meth:`reset` starts over."""

    __slots__ = ("_first_s", "_max_s", "_next_s")

    def __init__(self, first_s: float, max_s: float) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"need 0 < first_s <= max_s, got {first_s} and {max_s}")
        self._first_s = first_s
        self._max_s = max_s
        self._next_s = first_s

    def next_s(self) -> float:
        """The pause before the next try; the one after it is twice as long (capped)."""
        pause_s = self._next_s
        self._next_s = min(pause_s * 2, self._max_s)
        return pause_s

    def reset(self) -> None:
        """The last try went well: the next failure pauses ``first_s`` again."""
        self._next_s = self._first_s


async def run_restarting(
    dispatcher: Dispatcher,
    *,
    backoff: Backoff | None = None,
    healthy_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``dispatcher`` until it is stopped, restarting it whenever it dies of an error.

    Each death is logged at ERROR with its traceback; the restart waits ``backoff``
    (0.5 s, doubling up to 30 s, by default), back to its first pause after a run of at
    least ``healthy_s``. :meth:`Dispatcher.stop` ends the wait at once.
    """
    backoff = backoff or Backoff(0.5, 30.0)
    while True:
        started = clock()
        try:
            await dispatcher.run()
            return
        except Exception:
            if dispatcher.stopping:
                logger.exception("the dispatcher failed while stopping")
                return
            if clock() - started >= healthy_s:
                backoff.reset()
            pause_s = backoff.next_s()
            logger.exception(
                "the dispatcher stopped unexpectedly; its deliveries in flight come back "
                "when their leases run out; restarting it in %.1f s",
                pause_s,
            )
        if await dispatcher.wait_for_stop(pause_s):
            return
