"""``POST /v1/spaces/{space}/events/replay``: deliver stored events again.

The body names the events: ``{"ids": [...]}`` or a window of received time
``{"since": …, "until": …}`` (``since`` required), optionally ``"subscriptionId"``. The
answer is 200 ``{"replayed": n, "events": m, "skipped": {"deletedSubscription": a,
"atMostOnce": b}}``. The rules are :mod:`eventgateway.queue.replay`'s; an admin key is
needed, as for every write (``api/auth.py``).

Which subscriptions still exist, and how they deliver now, comes from this process's
routing table: the Configuration API's outermost layer
(:class:`~eventgateway.asgi_routing.RefreshAfterWrite`) puts it in
``scope["state"]["routing"]`` (:data:`ROUTING_STATE`), as the auth guard puts the
principal there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventgateway.api.params import parse_time
from eventgateway.errors import UnavailableError, ValidationError
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.replay import ReplayTarget, Subscriptions
from eventgateway.routing.table import RoutingTable

__all__ = ["ROUTING_STATE", "replay_handler", "subscriptions_of"]

ROUTING_STATE: Final = "routing"
"""The key of ``scope["state"]`` under which the routing table reaches the handler."""

# Times are shown with microsecond precision; a value copied from a listing (an event's
# receivedAt) must select that event, so bounds move half a microsecond down (as redrive).
_HALF_MICROSECOND: Final = 5e-7


class _ReplayBody(msgspec.Struct):
    ids: list[str] | None = None
    subscriptionId: str | None = None
    since: str | None = None
    until: str | None = None


def subscriptions_of(table: RoutingTable, space: str) -> Subscriptions:
    """What replay may deliver to in ``space``, per ``table``: an async subscription that
    exists, with its function, ordering and delivery mode now."""

    def target(subscription_id: str) -> ReplayTarget | None:
        found = table.target(space, subscription_id)
        if found is None or found.subscription.type != "async":
            return None
        subscription = found.subscription
        return ReplayTarget(
            subscription.function_id,
            ordered=subscription.ordered,
            at_most_once=subscription.delivery == "at-most-once",
        )

    return target


def _time(raw: str | None, name: str, now_s: float) -> float | None:
    if raw is None:
        return None
    return parse_time(raw, name, now_s=now_s) - _HALF_MICROSECOND


def replay_handler(log: DeliveryLog) -> Callable[[Request], Awaitable[Response]]:
    """The route handler replaying the events of ``log``."""

    async def replay(request: Request) -> Response:
        body = await request.body()
        try:
            spec = msgspec.json.decode(body or b"{}", type=_ReplayBody)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            # RecursionError: nested deeper than the decoder's stack allows
            raise ValidationError(f"Replay body is not valid: {exc}") from None
        table = request.scope.get("state", {}).get(ROUTING_STATE)
        if not isinstance(table, RoutingTable):
            raise UnavailableError("Replay is not available: the routing table is not known.")
        space = request.path_params["space"]
        now_s = time.time()
        result = await log.replay(
            space,
            ids=spec.ids,
            subscription_id=spec.subscriptionId,
            since=_time(spec.since, "since", now_s),
            until=_time(spec.until, "until", now_s),
            subscriptions=subscriptions_of(table, space),
        )
        return Response(msgspec.json.encode(result) + b"\n", media_type="application/json")

    return replay
