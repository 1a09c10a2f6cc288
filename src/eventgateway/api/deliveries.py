"""The delivery log and dead letters on the Configuration API.

* ``GET /v1/spaces/{space}/events`` — recent events with their state
  (``?state=pending|retrying|delivered|dead``, ``subscriptionId``, ``limit``, ``before``).
* ``GET /v1/spaces/{space}/events/{id}`` — one event with every delivery and attempt.
* ``POST /v1/spaces/{space}/events/replay`` — deliver stored events again
  (``api/replay.py``).
* ``GET /v1/spaces/{space}/deadletters`` (``subscriptionId``, ``since``, ``until``,
  ``limit``) and ``GET …/deadletters/{id}``.
* ``POST /v1/spaces/{space}/deadletters/redrive`` with ``{"ids": [...]}``, a filter
  (``subscriptionId``, ``since``, ``until``) or ``{"all": true}`` → ``{"redriven": n}``.
* ``DELETE …/deadletters/{id}`` → 204; ``DELETE …/deadletters?subscriptionId=…`` or
  ``?all=true`` → ``{"purged": n}``.

Times in queries are RFC 3339 or Unix seconds. Only deliveries of ``{space}`` are shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import eventgateway.api.convertors  # noqa: F401 - registers the 'rest' convertor
from eventgateway.api.config import ROUTER_HANDLERS
from eventgateway.api.params import body_time, check_window, parse_limit, parse_time
from eventgateway.api.problems import EXCEPTION_HANDLERS
from eventgateway.api.replay import replay_handler
from eventgateway.errors import NotFoundError, ValidationError
from eventgateway.queue.log import DeliveryLog
from eventgateway.routing.table import RoutingTable

__all__ = ["create_deliveries_app", "is_deliveries_path"]

_STATES = frozenset({"pending", "retrying", "delivered", "dead"})
_MAX_LIMIT = 1000


def is_deliveries_path(path: str) -> bool:
    """Whether a Configuration API path belongs to this app."""
    parts = path.split("/", 5)
    return (
        len(parts) >= 5
        and parts[1] == "v1"
        and parts[2] == "spaces"
        and parts[4] in ("events", "deadletters")
    )


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value) + b"\n", status, media_type="application/json")


# Times are shown with microsecond precision; a value copied from a listing (say a
# dead letter's deadAt) must select that item, so bounds are moved half a microsecond down.
_HALF_MICROSECOND = 5e-7


def _time(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    return _parse_time(raw, name)


def _parse_time(raw: str, name: str) -> float:
    return parse_time(raw, name) - _HALF_MICROSECOND


def _body_time(raw: str | float | None, name: str) -> float | None:
    seconds = body_time(raw, name)
    return None if seconds is None else seconds - _HALF_MICROSECOND


def _limit(params: Mapping[str, str]) -> int:
    return parse_limit(params, default=100, maximum=_MAX_LIMIT)


def create_deliveries_app(log: DeliveryLog, routing: Callable[[], RoutingTable]) -> Starlette:
    """The ASGI app serving the delivery log and dead letters of ``log``; ``routing``
    returns the gateway's current routing table (a replay delivers as it says)."""

    async def list_events(request: Request) -> Response:
        params = request.query_params
        state = params.get("state")
        if state is not None and state not in _STATES:
            raise ValidationError(f"state {state!r} must be one of {', '.join(sorted(_STATES))}")
        before = params.get("before")
        # Cursors are SQLite rowids: at most 19 digits and 2**63 - 1.
        if before is not None and not (
            before.isascii() and before.isdigit() and len(before) <= 19 and int(before) < 2**63
        ):
            raise ValidationError(f"before {before!r} must be a cursor from a previous page")
        events = await log.list_events(
            request.path_params["space"],
            state=state,
            subscription_id=params.get("subscriptionId"),
            limit=_limit(params),
            before_seq=int(before) if before is not None else None,
        )
        return _json({"events": events})

    async def get_event(request: Request) -> Response:
        event_id = request.path_params["id"]
        view = await log.get_event(request.path_params["space"], event_id)
        if view is None:
            raise NotFoundError(f'Event "{event_id}" not found.')
        return _json(view)

    async def list_dead_letters(request: Request) -> Response:
        params = request.query_params
        letters = await log.list_dead_letters(
            request.path_params["space"],
            subscription_id=params.get("subscriptionId"),
            since=_time(params, "since"),
            until=_time(params, "until"),
            limit=_limit(params),
        )
        return _json({"deadLetters": letters})

    async def get_dead_letter(request: Request) -> Response:
        letter_id = request.path_params["id"]
        letter = await log.get_dead_letter(request.path_params["space"], letter_id)
        if letter is None:
            raise NotFoundError(f'Dead letter "{letter_id}" not found.')
        return _json(letter)

    async def redrive(request: Request) -> Response:
        body = await request.body()
        try:
            spec = msgspec.json.decode(body or b"{}", type=_RedriveBody)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            # RecursionError: nested deeper than the decoder's stack allows
            raise ValidationError(f"Redrive body is not valid: {exc}") from None
        space = request.path_params["space"]
        has_filter = spec.subscriptionId is not None or spec.since is not None
        if spec.ids is None and not has_filter and spec.until is None and not spec.all:
            raise ValidationError(
                'Name what to redrive: {"ids": [...]}, a filter '
                '(subscriptionId, since, until) or {"all": true}.'
            )
        since, until = _body_time(spec.since, "since"), _body_time(spec.until, "until")
        check_window(since, until)
        count = await log.redrive(
            space, ids=spec.ids, subscription_id=spec.subscriptionId, since=since, until=until
        )
        return _json({"redriven": count})

    async def purge_one(request: Request) -> Response:
        space, letter_id = request.path_params["space"], request.path_params["id"]
        if await log.purge(space, ids=[letter_id]) == 0:
            raise NotFoundError(f'Dead letter "{letter_id}" not found.')
        return Response(status_code=204)

    async def purge(request: Request) -> Response:
        params = request.query_params
        subscription_id = params.get("subscriptionId")
        since, until = _time(params, "since"), _time(params, "until")
        unfiltered = subscription_id is None and since is None and until is None
        if unfiltered and params.get("all") != "true":
            raise ValidationError("Name what to purge: subscriptionId, since, until, or all=true.")
        count = await log.purge(
            request.path_params["space"],
            subscription_id=subscription_id,
            since=since,
            until=until,
        )
        return _json({"purged": count})

    base = "/v1/spaces/{space}"
    routes = [
        Route(f"{base}/events", list_events, methods=["GET"]),
        Route(f"{base}/events/replay", replay_handler(log, routing), methods=["POST"]),
        Route(f"{base}/events/{{id:rest}}", get_event, methods=["GET"]),
        Route(f"{base}/deadletters", list_dead_letters, methods=["GET"]),
        Route(f"{base}/deadletters", purge, methods=["DELETE"]),
        Route(f"{base}/deadletters/redrive", redrive, methods=["POST"]),
        Route(f"{base}/deadletters/{{id}}", get_dead_letter, methods=["GET"]),
        Route(f"{base}/deadletters/{{id}}", purge_one, methods=["DELETE"]),
    ]
    return Starlette(routes=routes, exception_handlers={**EXCEPTION_HANDLERS, **ROUTER_HANDLERS})


# Unknown members are refused, as for replay: a misspelt filter must not widen a redrive.
class _RedriveBody(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str] | None = None
    subscriptionId: str | None = None
    since: str | float | None = None
    until: str | float | None = None
    all: bool = False
