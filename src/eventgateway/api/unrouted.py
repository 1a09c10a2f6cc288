"""A hint in the gateway's log when an event reaches no subscription on its path but has
subscriptions on other paths: most likely an emitter using the wrong URL.

The Events API accepts such an event with 202, as the original did, and the emitter never
learns that nobody got it. The classic case: the Node SDK's ``new SDK({url, space})``
never adds the space to the path, so with ``url: 'http://localhost:4000'`` events go to
``/`` while ``eg deploy`` subscribed on ``/<space>/``. Said once per (method, path, event
type) until the configuration changes, at most :data:`MAX_HINTS` times per configuration,
so a client probing paths cannot flood the log; events of types nobody subscribes to
(common: producers emit before anyone listens) neither get a hint nor use one up.
``http.request`` events (any method, any path: a miss is a 404-like case, not a mistake)
are never hinted about.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from eventgateway.events.model import HTTP_REQUEST_TYPE, CloudEvent
from eventgateway.routing.table import RoutingTable

__all__ = ["MAX_HINTS", "UnroutedHint"]

logger = logging.getLogger(__name__)

MAX_HINTS: Final = 20  # distinct (method, path, type) hinted about per configuration
_SHOWN_PATHS: Final = 3


class UnroutedHint:
    """Remembers what it said for the current routing table."""

    __slots__ = ("_said", "_table")

    def __init__(self) -> None:
        self._table: RoutingTable | None = None
        self._said: set[tuple[str, str, str]] = set()

    def note(
        self, method: str, path: str, events: Iterable[CloudEvent], table: RoutingTable
    ) -> None:
        """Called for a request none of whose events matched a subscription."""
        if table is not self._table:
            self._table, self._said = table, set()
        for event in events:
            key = (method, path, event.type)
            if event.type == HTTP_REQUEST_TYPE or key in self._said:
                continue
            if not table.has_async_type(method, event.type):
                continue  # an event nobody subscribes to: nothing looks wrong
            if len(self._said) >= MAX_HINTS:
                return
            self._said.add(key)
            elsewhere = table.async_paths(method, event.type)
            more = (
                f" and {len(elsewhere) - _SHOWN_PATHS} more"
                if len(elsewhere) > _SHOWN_PATHS
                else ""
            )
            logger.warning(
                "%s %s: event type %r reached no subscription on this path; its "
                "subscriptions are on %s%s. Emit to one of those (with the Node SDK: "
                "url 'http://HOST:PORT%s'). Said once per path and type until the "
                "configuration changes.",
                method,
                path,
                event.type,
                ", ".join(elsewhere[:_SHOWN_PATHS]),
                more,
                elsewhere[0].rstrip("/"),
            )
