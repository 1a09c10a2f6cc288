"""``POST /v1/spaces/{space}/events/replay``: deliver stored events again.

The body names the events: ``{"ids": [...]}`` or a window of received time
``{"since": …, "until": …}`` (``since`` required), optionally ``"subscriptionId"``. The
answer is 200 ``{"replayed": n, "events": m, "skipped": {"deletedSubscription": a,
"atMostOnce": b, "filtered": c}}``. The rules are :mod:`eventgateway.queue.replay`'s; an
admin key is needed, as for every write (``api/auth.py``).

Which subscriptions still exist, how they deliver and what their filters let through
now comes from this process's routing table, read through the getter the gateway hands
:func:`replay_handler` (``create_deliveries_app``'s ``routing``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventgateway.api.params import body_time, check_window
from eventgateway.errors import ValidationError
from eventgateway.events.model import CloudEvent
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.replay import ReplayTarget, Subscriptions
from eventgateway.routing.table import RoutingTable, Target

__all__ = ["replay_handler", "subscriptions_of"]

# Times are shown with microsecond precision; a value copied from a listing (an event's
# receivedAt) must select that event, so bounds move half a microsecond down (as redrive).
_HALF_MICROSECOND: Final = 5e-7


# Unknown members are refused: a misspelt "subscriptionID" would otherwise replay to
# every subscription of the events, which no retry can take back.
class _ReplayBody(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str] | None = None
    subscriptionId: str | None = None
    since: str | float | None = None
    until: str | float | None = None


def subscriptions_of(table: RoutingTable, space: str) -> Subscriptions:
    """What replay may deliver to in ``space``, per ``table``: an async subscription that
    exists, with its function, ordering, delivery mode and filter now."""

    def target(subscription_id: str) -> ReplayTarget | None:
        found = table.target(space, subscription_id)
        if found is None or found.subscription.type != "async":
            return None
        subscription = found.subscription
        return ReplayTarget(
            subscription.function_id,
            ordered=subscription.ordered,
            at_most_once=subscription.delivery == "at-most-once",
            matches=_filter_of(found),
        )

    return target


def _filter_of(target: Target) -> Callable[[CloudEvent], bool] | None:
    if target.matcher is not None:
        return target.matcher.matches_event
    if target.subscription.filter is not None:
        # A stored filter that no longer compiles keeps the subscription out of routing
        # (routing/table.py): it gets no event at accept, so none by replay either.
        return _nothing
    return None


def _nothing(event: CloudEvent) -> bool:
    return False


def _time(raw: str | float | None, name: str, now_s: float) -> float | None:
    seconds = body_time(raw, name, now_s=now_s)
    return None if seconds is None else seconds - _HALF_MICROSECOND


def replay_handler(
    log: DeliveryLog, routing: Callable[[], RoutingTable]
) -> Callable[[Request], Awaitable[Response]]:
    """The route handler replaying the events of ``log`` to the subscriptions of the
    table ``routing`` returns when a request comes (the gateway's current one)."""

    async def replay(request: Request) -> Response:
        body = await request.body()
        try:
            spec = msgspec.json.decode(body or b"{}", type=_ReplayBody)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            # RecursionError: nested deeper than the decoder's stack allows
            raise ValidationError(f"Replay body is not valid: {exc}") from None
        space = request.path_params["space"]
        now_s = time.time()
        since, until = _time(spec.since, "since", now_s), _time(spec.until, "until", now_s)
        check_window(since, until)
        result = await log.replay(
            space,
            ids=spec.ids,
            subscription_id=spec.subscriptionId,
            since=since,
            until=until,
            subscriptions=subscriptions_of(routing(), space),
        )
        return Response(msgspec.json.encode(result) + b"\n", media_type="application/json")

    return replay
