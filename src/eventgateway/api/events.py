"""The Events API: any method, any path (contract §2). Raw ASGI — this is the hot path.

Per request: answer 503 while draining; apply CORS (a preflight stops there); in auth
mode, ask a private space's emit key (``api/emit_guard.py``); parse the request into
CloudEvents; refuse the system namespace; spend the space's (and key's) rate limit;
queue one delivery per matching async subscription whose filter, if any, the event passes
(``api/fanout.py``; before answering, so a 202 means queued); run the sync subscription,
if any, and answer with the function's response — or 202.

Deliberate differences from the original, all documented in docs/wire-compatibility.md:
error bodies are sent as ``application/json`` (the original's were sniffed as text/plain);
a system-namespace event gets a 400 *with* a message; a full queue answers 429 with
``Retry-After`` instead of dropping the event silently.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import unquote

from eventgateway.api.asgi_body import BodyTooLarge, ClientGone, read_body
from eventgateway.api.caller import watching_caller
from eventgateway.api.emit_guard import (
    WWW_AUTHENTICATE,
    EmitRateLimiter,
    authorize_emit,
    space_of,
)
from eventgateway.api.fanout import plan_deliveries
from eventgateway.api.hosted import HostedRouting
from eventgateway.api.received_counts import ReceivedCounts
from eventgateway.api.unrouted import UnroutedHint
from eventgateway.auth.base import Authenticator
from eventgateway.dispatch.invoke import Invoker, apply_authorization
from eventgateway.dispatch.response import BODILESS_STATUSES, MALFORMED, parse_http_result
from eventgateway.errors import (
    EventParseError,
    HTTPError,
    PayloadTooLargeError,
    StoreError,
    TooManyRequestsError,
    UnauthorizedError,
)
from eventgateway.events.codec import encode_json
from eventgateway.events.http import HttpRequest, authorizer_request, parse_request
from eventgateway.events.model import SYSTEM_PREFIX, CloudEvent
from eventgateway.events.structured import Batch
from eventgateway.model.runtime_provider import RUNTIME_TYPES
from eventgateway.observability.metrics import Metrics
from eventgateway.observability.system_events import SystemEvents
from eventgateway.observability.throttled import ThrottledWarning
from eventgateway.queue.base import Accepted, DeliveryQueue
from eventgateway.routing import cors as cors_rules
from eventgateway.routing.table import RoutingTable, SyncMatch
from eventgateway.settings import Limits

__all__ = ["CALLS_FUNCTION", "EventsApp"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

_JSON = (b"content-type", b"application/json")
_FAILED_CALL = "Function call failed. Please check logs."
_DUPLICATE = (b"x-eventgateway-duplicate", b"true")
CALLS_FUNCTION: Final = "eventgateway.calls_function"
"""ASGI scope key set on a request that calls a function for its answer (a sync route)."""
# A "%" not followed by two hex digits (shown with what follows it, at most two characters).
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2}).{0,2}")
_STORE_RETRY = (b"retry-after", b"2")  # a NATS failover or reconnect takes about this long
# Draining: another instance can take the event now; clients (our SDK among them) retry a
# 503 only when it carries Retry-After.
_DRAIN_RETRY = (b"retry-after", b"1")


def _error_body(message: str) -> bytes:
    return encode_json({"errors": [{"message": message}]}) + b"\n"


_UNAVAILABLE = _error_body("Service Unavailable")


class EventsApp:
    """The catch-all ASGI app of the Events API."""

    def __init__(
        self,
        *,
        table: Callable[[], RoutingTable],
        durable: DeliveryQueue,
        fast: DeliveryQueue,
        invoker: Invoker,
        system: SystemEvents,
        metrics: Metrics,
        limits: Limits,
        domain: str | None = None,
        authenticator: Authenticator | None = None,
        rate_limiter: EmitRateLimiter | None = None,
        forward_fast: Callable[[list[Accepted]], bool] | None = None,
    ) -> None:
        self._table = table
        self._durable = durable
        self._fast = fast
        self._received = ReceivedCounts(metrics).count
        self._store_warning = ThrottledWarning(logger)  # a full disk refuses every accept
        self._filtered_counters: dict[str, Any] = {}
        self._invoker = invoker
        self._system = system
        self._metrics = metrics
        self._limits = limits
        self._hosted = HostedRouting(domain)
        self._unrouted = UnroutedHint()
        # None: open mode (no key is ever asked for) / nothing rate limited.
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter
        # At-most-once events go to the delivery worker's memory when it dispatches
        # (``--dispatch worker``); ``False`` back (not linked) keeps them here.
        self._forward_fast = forward_fast
        self.draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is the composing app's business
            return
        if self.draining:
            await _respond(send, 503, [_JSON, _DRAIN_RETRY], _UNAVAILABLE)
            return
        method: str = scope["method"]
        raw_headers: RawHeaders = scope["headers"]
        header_bytes = 0
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            header_bytes += len(name) + len(value)
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if header_bytes > self._limits.max_header_bytes:
            await _respond_error(
                send,
                431,
                f"Request headers are {header_bytes} bytes; the limit is "
                f"{self._limits.max_header_bytes} bytes.",
                [],
            )
            return
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        bad_escape = _BAD_ESCAPE.search(raw_path) if "%" in raw_path else None
        if bad_escape is not None:  # Go's server refused such a URL before any routing
            message = f'The request path has an invalid percent-escape "{bad_escape.group()}".'
            await _respond_error(send, 400, message, [])
            return
        host = headers.get("host", "")
        route_path = self._hosted.path(host, raw_path)

        table = self._table()
        extra: list[tuple[bytes, bytes]] = []
        cors = None
        # The original looked the configuration up by the header's value as sent: a
        # lower-case "patch" finds none, and the OPTIONS request is an ordinary event.
        requested = headers.get("access-control-request-method", "")
        cors_method = requested if method == "OPTIONS" and requested else method
        cors = table.cors(cors_method, route_path)
        if cors is not None:
            if cors_rules.is_preflight(method, headers):
                await _respond(send, 200, _encode(cors_rules.preflight_headers(cors, headers)), b"")
                return
            extra = _encode(cors_rules.actual_headers(cors, method, headers))

        # After the preflight (browsers send no key with one), before reading the body.
        key_id: str | None = None
        space = space_of(route_path)
        if self.authenticator is not None:
            try:
                grant = authorize_emit(self.authenticator, space, headers)
            except HTTPError as exc:
                if isinstance(exc, UnauthorizedError):
                    extra = [*extra, WWW_AUTHENTICATE]
                await _respond_error(send, exc.status_code, exc.message, extra)
                return
            if grant is not None:
                key_id = grant.principal.key_id
                del headers[grant.header]
                raw_headers = [h for h in raw_headers if h[0].lower() != grant.header.encode()]

        try:
            body = await read_body(
                receive, self._limits.max_body_bytes, declared=headers.get("content-length")
            )
        except ClientGone:
            return  # nobody to answer, and a partial body must not become an event
        except BodyTooLarge:
            await _respond_error(
                send,
                413,
                f"Request body is over the limit of {self._limits.max_body_bytes} bytes.",
                extra,
            )
            return
        request = HttpRequest(
            method=method,
            raw_path=raw_path,
            path=unquote(raw_path),
            query_string=scope.get("query_string", b""),
            headers=raw_headers,
            body=body,
            host=host,
        )
        try:
            events = parse_request(
                request,
                max_json_depth=self._limits.max_json_depth,
                max_batch_events=self._limits.max_batch_events,
            )
        except (EventParseError, PayloadTooLargeError) as exc:  # 400, or 413 for a batch
            await _respond_error(send, exc.status_code, exc.message, extra)
            return
        for event in events:
            if event.type.startswith(SYSTEM_PREFIX):
                await _respond_error(
                    send,
                    400,
                    f"Event type {event.type!r} is in the reserved "
                    f"'{SYSTEM_PREFIX}' namespace and cannot be emitted by clients.",
                    extra,
                )
                return
        if self.rate_limiter is not None:
            try:
                self.rate_limiter.check(space, key_id, len(events))
            except TooManyRequestsError as exc:
                retry = (b"retry-after", str(exc.retry_after_s).encode())
                await _respond_error(send, 429, exc.message, [*extra, retry])
                return

        batch = isinstance(events, Batch)
        sync_match: SyncMatch | None = None
        sync_event: CloudEvent | None = None
        durable: list[Accepted] = []
        fast: list[Accepted] = []
        routed = False
        for event in events:
            self._system.emit(
                "eventgateway.event.received",
                {"path": route_path, "event": event, "headers": headers},
            )
            self._received(event.type, table)
            targets = table.async_targets(method, route_path, event.type)
            if targets:
                routed = True
                plan_deliveries(event, targets, request, durable, fast, self._filtered)
            if not batch and sync_match is None:
                sync_match = table.sync(method, route_path, event.type)
                sync_event = event
        if not routed and sync_match is None:
            self._unrouted.note(method, route_path, events, table)
        if durable:
            try:
                duplicates = await self._durable.accept(durable)
            except TooManyRequestsError as exc:
                extra = [*extra, (b"retry-after", str(exc.retry_after_s).encode())]
                await _respond_error(send, 429, exc.message, extra)
                return
            except StoreError as exc:
                self._store_warning.warn("could not persist %d event(s): %s", len(durable), exc)
                await _respond_error(
                    send,
                    503,
                    "Events cannot be stored right now; retry later.",
                    [*extra, _STORE_RETRY],
                )
                return
            # Of a batch, only when every event was one: the header is the whole answer's,
            # and "duplicate" for a batch that also carried new events misled producers.
            if all(duplicates) and len(duplicates) == len(events):
                extra = [*extra, _DUPLICATE]
        if fast:
            await self._accept_fast(fast)
        if sync_match is None or sync_event is None:
            await _respond(send, 202, [(b"content-length", b"0"), *extra], b"")
            return
        scope[CALLS_FUNCTION] = True  # a shutdown cutting it off must not invite a retry
        await self._run_sync(send, receive, sync_match, sync_event, request, extra)

    def _filtered(self, space: str) -> None:
        counter = self._filtered_counters.get(space)
        if counter is None:  # spaces come from the configuration, so the labels are bounded
            counter = self._metrics.events_filtered.labels(space=space)
            self._filtered_counters[space] = counter
        counter.inc()

    async def _accept_fast(self, items: list[Accepted]) -> None:
        if self._forward_fast is not None and self._forward_fast(items):
            return
        try:
            await self._fast.accept(items)
        except TooManyRequestsError:
            # At-most-once is the original's contract: a full buffer drops, and counts it.
            for item in items:
                for delivery in item.deliveries:
                    self._metrics.events_dropped.labels(
                        space=delivery.space, type=item.event.type
                    ).inc()

    async def _run_sync(
        self,
        send: Send,
        receive: Receive,
        match: SyncMatch,
        event: CloudEvent,
        request: HttpRequest,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        target = match.target
        if target.authorizer_id is not None:
            verdict = await self._invoker.authorize(
                target.authorizer, event, authorizer_request(request)
            )
            if not verdict.allowed:
                await _respond(send, 403, [(b"content-length", b"0"), *extra], b"")
                return
            event = apply_authorization(event, verdict.authorization)
        if event.is_http_request:
            event = event.copy()
            event.data["params"] = match.params
        function = target.function
        runs_here = function is not None and function.type in RUNTIME_TYPES
        async with watching_caller(receive) if runs_here else contextlib.nullcontext():
            outcome = await self._invoker.call(
                function, event, sync=True, function_id=target.subscription.function_id
            )
        if not outcome.ok or outcome.reply is None:
            logger.warning(
                "sync call of %s/%s for event %s failed: %s",
                target.subscription.space,
                target.subscription.function_id,
                event.id,
                outcome.error,
            )
            await _respond_error(send, 500, _FAILED_CALL, extra)
            return
        result = parse_http_result(outcome.reply.body)
        if result is None:
            await _respond_error(send, 500, MALFORMED, extra)
            return
        # Values as UTF-8, as Go wrote a string; a header the function sets replaces the
        # gateway's own of that name (CORS), as Go's Header().Set did after rs/cors.
        headers = [(k.lower().encode("latin-1"), v.encode()) for k, v in result.headers]
        if extra:
            own = {name for name, _ in headers}
            extra = [(name, value) for name, value in extra if name not in own]
        if result.status not in BODILESS_STATUSES:
            headers.append((b"content-length", str(len(result.body)).encode()))
        await _respond(send, result.status, [*headers, *extra], result.body)


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_error(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = _error_body(message)
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await _respond(send, status, headers, body)
