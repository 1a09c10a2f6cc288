"""Calling one function directly, once, on the Configuration API (``eg invoke``).

``POST /v1/spaces/{space}/functions/{functionId}/invoke`` with an optional JSON body
``{"event": "<type>", "data": <any JSON>, "source": "<uri-reference>"}``. The gateway
builds a CloudEvents 1.0 event — ``type`` as given, else the event type of the function's
first subscription (lowest ``subscriptionId``), else ``invoke``; ``source``
:data:`DEFAULT_SOURCE` unless given; a new UUID as ``id`` — and calls the function once
through the :class:`~eventgateway.dispatch.invoke.Invoker`, with its own provider: no
authorizer, no queue, no retry. The answer is 200 whatever the function did::

    {"ok": true, "requestId": "7b88…", "eventId": "…", "eventType": "user.created",
     "status": null, "result": {"message": "success"}, "error": null,
     "durationMs": 5.9, "logs": [{"timestamp", "requestId", "stream", "message"}, …]}

``ok`` follows the sync-route rule, because the caller waits for the answer as a sync
route's client does: the call failed when no answer came (a handler that raised, crashed
or timed out; a network error) or an HTTP function answered 500. Any other status is an
answer and is reported in ``status`` (HTTP functions only). ``result`` is the answer's
JSON, or its text when it is not JSON. ``error`` is Lambda's
``{"errorType", "errorMessage", "stackTrace"}`` for a failed ``python``/``nodejs``
handler, ``{"message"}`` for other failures. ``logs`` holds the invocation's lines
(START … REPORT) for ``python``/``nodejs`` functions: the newest :data:`MAX_LOG_LINES`,
after a ``system`` notice of how many more there were.

An unknown function is 404; a body that is not such an object is 400 naming the field.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventgateway.api.config import ROUTER_HANDLERS
from eventgateway.api.problems import EXCEPTION_HANDLERS, response_for
from eventgateway.api.runtime_stream import LogEntry, entry
from eventgateway.dispatch.invoke import Invoker, Outcome
from eventgateway.errors import NotFoundError, ValidationError
from eventgateway.events.model import CloudEvent, format_rfc3339
from eventgateway.model.entities import Function, Subscription, decode_entity
from eventgateway.model.runtime_provider import RUNTIME_TYPES
from eventgateway.observability.metrics import Metrics
from eventgateway.providers.runtime import REQUEST_ID_HEADER
from eventgateway.runtime.base import LogLine, LogStore
from eventgateway.runtime.logs_tail import DEFAULT_TAIL_BUFFER_LINES, dropped_marker, is_notice
from eventgateway.store.base import ConfigStore

__all__ = [
    "DEFAULT_EVENT_TYPE",
    "DEFAULT_SOURCE",
    "InvokeResponse",
    "create_invoke_app",
    "is_invoke_path",
]

DEFAULT_EVENT_TYPE: Final = "invoke"
DEFAULT_SOURCE: Final = "/eventgateway/invoke"
# The runtime logs END and REPORT before the call returns, so the lines are normally in
# the tail already; the bound only keeps a slow log store from holding the answer up.
LOG_WAIT_S: Final = 1.0
MAX_LOG_LINES: Final = DEFAULT_TAIL_BUFFER_LINES
_FIELDS: Final = ("event", "data", "source")
_JSON_KINDS: Final = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


class InvokeResponse(msgspec.Struct):
    """The answer of the invoke endpoint (wire names)."""

    ok: bool
    requestId: str | None
    eventId: str
    eventType: str
    status: int | None
    result: Any
    error: dict[str, Any] | None
    durationMs: float
    logs: list[LogEntry]


class _LambdaError(msgspec.Struct):
    errorType: str
    errorMessage: str = ""
    stackTrace: list[str] = []


_encoder: Final = msgspec.json.Encoder()
_lambda_error: Final = msgspec.json.Decoder(_LambdaError)


def is_invoke_path(path: str) -> bool:
    """Whether a Configuration API path is ``/v1/spaces/{space}/functions/{id}/invoke``."""
    parts = path.split("/")
    return (
        len(parts) == 7
        and parts[1:3] == ["v1", "spaces"]
        and parts[4] == "functions"
        and parts[6] == "invoke"
    )


def _body(raw: bytes) -> dict[str, Any]:
    """The request body as a checked dict; an empty body is ``{}``. ``data`` stays as sent
    (a ``msgspec.Raw``): any JSON the Events API would take, 5,000-digit numbers too."""
    if not raw.strip():
        return {}
    try:
        fields = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
        body: dict[str, Any] = {
            name: value if name == "data" else msgspec.json.decode(value)
            for name, value in fields.items()
        }
    except msgspec.ValidationError:  # JSON, but no object
        raise ValidationError(
            f'Invoke body must be a JSON object like {{"data": …}}, got '
            f"{_JSON_KINDS.get(type(_loose(raw)), 'a number')}"
        ) from None
    except (msgspec.DecodeError, RecursionError) as exc:  # also nested too deeply to decode
        raise ValidationError(
            f'Invoke body is not JSON ({exc}); send {{"event": "<type>", "data": <any JSON>}}'
        ) from None
    for name in body:
        if name not in _FIELDS:
            raise ValidationError(
                f'Invoke body has an unknown field "{name}": use "event", "data" and "source"'
            )
    for name in ("event", "source"):
        value = body.get(name)
        if name in body and (not isinstance(value, str) or not value):
            raise ValidationError(
                f'Invoke body field "{name}" must be a non-empty string, got '
                f"{_encoder.encode(value).decode()}"
            )
    return body


def _loose(raw: bytes) -> object:
    """``raw`` decoded, for the name of its kind; ``0`` if that fails (a huge number)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return 0


async def _event_type(store: ConfigStore, function: Function, given: str | None) -> str:
    if given is not None:
        return given
    subscriptions = [
        subscription
        for raw in await store.list("subscriptions", function.space)
        if isinstance(subscription := decode_entity("subscriptions", raw), Subscription)
        and subscription.function_id == function.function_id
    ]
    if not subscriptions:
        return DEFAULT_EVENT_TYPE
    return min(subscriptions, key=lambda s: s.subscription_id).event_type


def _event(event_type: str, body: dict[str, Any]) -> CloudEvent:
    has_data = "data" in body
    return CloudEvent(
        "1.0",
        str(uuid.uuid4()),
        body.get("source", DEFAULT_SOURCE),
        event_type,
        time=format_rfc3339(datetime.now(UTC)),
        datacontenttype="application/json" if has_data else None,
        data=body.get("data"),
    )


def _request_id(outcome: Outcome) -> str | None:
    if outcome.failure is not None:
        return outcome.failure.request_id
    if outcome.reply is not None:
        for name, value in outcome.reply.headers:
            if name.lower() == REQUEST_ID_HEADER:
                return value
    return None


def _result(body: bytes) -> Any:
    if not body:
        return None
    try:
        # Checked, not decoded: passed on as the function wrote it, any number included.
        return msgspec.json.decode(body, type=msgspec.Raw)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested past the stack
        return body.decode("utf-8", "replace")


def _error(outcome: Outcome) -> dict[str, Any] | None:
    if outcome.ok:
        return None
    failure = outcome.failure
    if failure is not None and failure.request_id is not None:
        try:
            shape = _lambda_error.decode(failure.body_excerpt)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # cut off at the excerpt's length: the log still has the whole trace
        else:
            return {
                "errorType": shape.errorType,
                "errorMessage": shape.errorMessage,
                "stackTrace": shape.stackTrace,
            }
    return {"message": outcome.error}


async def _invocation_lines(
    tail: AsyncIterator[LogLine], request_id: str, space: str, function_id: str
) -> list[LogLine]:
    """The newest lines of one invocation, up to its REPORT line, from a tail opened
    before it: at most :data:`MAX_LOG_LINES`, after a notice of how many were left out."""
    report = f"REPORT RequestId: {request_id}"
    # Bounded: a handler may print without end, and the answer is one JSON document.
    found: collections.deque[LogLine] = collections.deque(maxlen=MAX_LOG_LINES)
    seen = 0
    with anyio.move_on_after(LOG_WAIT_S):
        async for line in tail:
            if line.request_id == request_id or is_notice(line):
                found.append(line)
                seen += 1
                if line.stream == "system" and line.message.startswith(report):
                    break
    if seen > len(found):
        why = f"an invocation answers with its newest {MAX_LOG_LINES} (eg logs shows those kept)"
        return [dropped_marker(space, function_id, seen - len(found), why), *found]
    return list(found)


async def _close(tail: AsyncIterator[LogLine]) -> None:
    aclose = getattr(tail, "aclose", None)
    if aclose is not None:
        await aclose()


def create_invoke_app(
    store: ConfigStore, invoker: Invoker, logs: LogStore, metrics: Metrics
) -> Starlette:
    """The ASGI app of ``POST /v1/spaces/{space}/functions/{functionId}/invoke``.

    Args:
        store: where the function and its subscriptions are read.
        invoker: calls the function (the gateway's in-process one, as sync routes use).
        logs: the function log store, for the invocation's lines.
        metrics: counts the request as operation ``invoke`` of resource ``function``.

    .. versionadded:: 0.1.0
    """

    async def invoke(space: str, function_id: str, raw: bytes) -> InvokeResponse:
        stored = await store.get("functions", space, function_id)
        if stored is None:
            raise NotFoundError(f'Function "{function_id}" not found.')
        function = decode_entity("functions", stored)
        assert isinstance(function, Function)
        body = _body(raw)
        event = _event(await _event_type(store, function, body.get("event")), body)
        runs_here = function.type in RUNTIME_TYPES
        # Opened before the call, so that no line of the invocation is missed.
        tail = logs.tail(space, function_id) if runs_here else None
        try:
            outcome = await invoker.call(function, event, sync=True)
            request_id = _request_id(outcome)
            lines: list[LogLine] = []
            if tail is not None and request_id is not None:
                lines = await _invocation_lines(tail, request_id, space, function_id)
        finally:
            if tail is not None:
                await _close(tail)
        reply = outcome.reply
        return InvokeResponse(
            ok=outcome.ok,
            requestId=request_id,
            eventId=event.id,
            eventType=event.type,
            status=None if runs_here or reply is None else reply.status,
            result=None if reply is None else _result(reply.body),
            error=_error(outcome),
            durationMs=round(outcome.duration_s * 1000, 3),
            logs=[entry(line) for line in lines],
        )

    async def endpoint(request: Request) -> Response:
        space = request.path_params["space"]
        started = time.perf_counter()
        try:
            answer = await invoke(space, request.path_params["functionId"], await request.body())
            return Response(_encoder.encode(answer) + b"\n", media_type="application/json")
        except Exception as exc:
            # Answer here: Starlette's outermost handler would re-raise after answering.
            return response_for(exc)
        finally:
            metrics.config_requests.labels(space, "function", "invoke").inc()
            metrics.config_request_duration_seconds.observe(time.perf_counter() - started)

    route = Route("/v1/spaces/{space}/functions/{functionId}/invoke", endpoint, methods=["POST"])
    app = Starlette(routes=[route], exception_handlers={**EXCEPTION_HANDLERS, **ROUTER_HANDLERS})
    app.router.redirect_slashes = False  # httprouter's rules, as in the configuration app
    return app
