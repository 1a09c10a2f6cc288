"""One attempt at calling one function, shared by sync routes and the dispatcher.

:class:`Invoker` encodes the event, runs the event type's authorizer (contract §4.6),
calls the provider, and classifies the reply into an :class:`Outcome`. Sync routes and
async deliveries read replies differently: for a sync route only a 500 (or no reply)
fails, as in the original; for an async delivery 2xx/3xx are delivered, 408, 429 and 5xx
are retryable failures, and other 4xx fail without a retry (and are dead-lettered).
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from eventgateway.dispatch.signing import sign_headers
from eventgateway.errors import ProviderError
from eventgateway.events.codec import encode_binary, encode_event
from eventgateway.events.model import SYSTEM_PREFIX, CloudEvent
from eventgateway.events.tracing import trace_headers
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call, Reply
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.queue.base import AttemptRecord

__all__ = ["Authorization", "Invoker", "Outcome"]

logger = logging.getLogger(__name__)

_RETRYABLE_STATUSES = frozenset({408, 429})
_EXCERPT_BYTES = 512  # of a failed attempt's reply, kept in the delivery log

SystemEmit = Callable[[str, dict[str, Any]], None]


class Outcome(msgspec.Struct, frozen=True):  # one per attempt: a Struct (see queue/base.py)
    """The result of one attempt."""

    ok: bool
    reply: Reply | None
    error: str = ""
    retryable: bool = False
    retry_after_s: float | None = None
    duration_s: float = 0.0
    # Why no reply came, for callers that show more than ``error`` (``api/invoke.py``).
    failure: ProviderError | None = None

    def record(self, started_at: float) -> AttemptRecord:
        """The attempt as the delivery log keeps it (a failure's reply excerpted)."""
        reply = self.reply
        excerpt = ""
        if reply is not None and not self.ok:
            excerpt = reply.body[:_EXCERPT_BYTES].decode("utf-8", "replace")
        elif self.failure is not None:  # no reply, but the error's payload (a Lambda's)
            excerpt = self.failure.body_excerpt[:_EXCERPT_BYTES]
        return AttemptRecord(
            started_at=started_at,
            duration_s=self.duration_s,
            outcome="delivered" if self.ok else "failed",
            status=reply.status if reply is not None else None,
            error=self.error,
            response_excerpt=excerpt,
        )


@dataclass(frozen=True, slots=True)
class Authorization:
    """An authorizer's verdict; ``authorization`` is stored on the event when allowed."""

    allowed: bool
    authorization: Any = None
    error: str = ""


class _AuthorizerResult(msgspec.Struct):
    authorization: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class _Principal(msgspec.Struct):
    principalId: str = ""
    context: dict[str, str] = {}


_authorizer_decoder = msgspec.json.Decoder(_AuthorizerResult)
_json_encoder = msgspec.json.Encoder()


class Invoker:
    """Calls functions through their providers."""

    def __init__(
        self,
        providers: ProviderRegistry,
        *,
        timeout_s: float = 5.0,
        system_emit: SystemEmit | None = None,
    ) -> None:
        self._providers = providers
        self._timeout_s = timeout_s
        self._system_emit = system_emit

    async def call(
        self,
        function: Function | None,
        event: CloudEvent,
        *,
        sync: bool,
        function_id: str = "",
        timeout_s: float | None = None,
        delivery_id: str | None = None,
        encoded: bytes | None = None,
    ) -> Outcome:
        """Deliver ``event`` to ``function`` once; never raises for a failed call.

        Args:
            function: the function, or ``None`` when it no longer exists (a failure).
            event: what to deliver.
            sync: read the reply as a sync route does (only 500 fails) or as an async
                delivery does (408, 429 and 5xx fail and may be retried).
            function_id: names the function in the error when ``function`` is ``None``.
            timeout_s: this attempt's timeout (default: the invoker's).
            delivery_id: the stable id of the delivery, sent as ``webhook-id`` when the
                function has signing secrets, so every retry carries the same id.
            encoded: ``encode_event(event)`` if the caller has it (the stored form).
        """
        if function is None:
            return Outcome(
                ok=False,
                reply=None,
                error=f"function {function_id!r} does not exist",
                retryable=False,
            )
        emit = self._system_emit if not event.type.startswith(SYSTEM_PREFIX) else None
        if emit is not None:
            emit(
                "eventgateway.function.invoking",
                {"space": function.space, "functionId": function.function_id, "event": event},
            )
        call = self._build_call(function, event, timeout_s, delivery_id, encoded, sync=sync)
        outcome = await self._attempt(function, call, sync=sync)
        if emit is not None:
            if outcome.ok:
                emit(
                    "eventgateway.function.invoked",
                    {
                        "space": function.space,
                        "functionId": function.function_id,
                        "event": event,
                        "result": outcome.reply.body if outcome.reply else b"",
                    },
                )
            else:
                emit(
                    "eventgateway.function.invocationFailed",
                    {
                        "space": function.space,
                        "functionId": function.function_id,
                        "event": event,
                        "error": {"message": outcome.error},
                    },
                )
        return outcome

    def _build_call(
        self,
        function: Function,
        event: CloudEvent,
        timeout_s: float | None,
        delivery_id: str | None,
        encoded: bytes | None = None,
        *,
        sync: bool = False,
    ) -> Call:
        # The producer's trace goes on (W3C Trace Context); ``[]`` for most events.
        headers = trace_headers(event) if "traceparent" in event.extensions else []
        if function.content_mode == "binary" and event.specversion == "1.0":
            binary_headers, body = encode_binary(event)
            content_type = "application/octet-stream"
            for name, value in binary_headers:
                if name.lower() == "content-type":
                    content_type = value
                else:
                    headers.append((name, value))
        else:
            body = encode_event(event) if encoded is None else encoded
            content_type = "application/cloudevents+json"
        if function.signing_secrets:
            headers.extend(
                sign_headers(
                    function.signing_secrets,
                    message_id=delivery_id or event.id,
                    timestamp_s=int(time.time()),
                    body=body,
                )
            )
        return Call(
            body=body,
            content_type=content_type,
            headers=headers,
            timeout_s=self._timeout_s if timeout_s is None else timeout_s,
            sync=sync,
        )

    async def _attempt(self, function: Function, call: Call, *, sync: bool) -> Outcome:
        provider = self._providers.get(function.type)
        started = time.perf_counter()
        try:
            reply = await provider.call(function, call)
        except ProviderError as exc:
            return Outcome(
                ok=False,
                reply=None,
                error=exc.message,
                retryable=exc.retryable,
                retry_after_s=exc.retry_after_s,
                duration_s=time.perf_counter() - started,
                failure=exc,
            )
        duration_s = time.perf_counter() - started
        status = reply.status
        if sync:
            # The original's rule for sync routes: only a 500 is a failed call.
            failed, retryable = status == 500, True
        else:
            failed = status >= 400
            retryable = status >= 500 or status in _RETRYABLE_STATUSES
        if not failed:
            return Outcome(ok=True, reply=reply, duration_s=duration_s)
        return Outcome(
            ok=False,
            reply=reply,
            error=f"function {function.function_id!r} answered HTTP {status}",
            retryable=retryable,
            retry_after_s=_retry_after_s(reply) if retryable else None,
            duration_s=duration_s,
        )

    async def authorize(
        self, authorizer: Function | None, event: CloudEvent, request: dict[str, Any] | None
    ) -> Authorization:
        """Ask the event type's authorizer function whether ``event`` may be delivered."""
        if authorizer is None:
            return Authorization(False, error="authorizer function does not exist")
        payload = _json_encoder.encode(
            {"event": msgspec.Raw(encode_event(event)), "request": request}
        )
        headers = trace_headers(event) if "traceparent" in event.extensions else []
        call = Call(body=payload, headers=headers, timeout_s=self._timeout_s, sync=True)
        outcome = await self._attempt(authorizer, call, sync=True)
        if not outcome.ok or outcome.reply is None:
            return Authorization(False, error=outcome.error)
        try:
            result = _authorizer_decoder.decode(outcome.reply.body)
            if result.authorization is not None:
                msgspec.convert(result.authorization, _Principal)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return Authorization(False, error=f"authorizer result is malformed: {exc}")
        if result.error is not None:
            return Authorization(False, error=str(result.error.get("message", "denied")))
        return Authorization(True, authorization=result.authorization)


def apply_authorization(event: CloudEvent, authorization: Any) -> CloudEvent:
    """A copy of ``event`` carrying the authorizer's result (contract §4.6).

    Unlike the original, other extensions are kept (it replaced them all when the event
    had extensions but no ``eventgateway`` one). The gateway owns the ``eventgateway``
    extension: a client's object keeps its other members, but a client value that is not
    an object (a string, a list) is replaced by ``{"authorization": …}``.
    """
    event = event.copy()
    if event.specversion == "0.1":
        sent = event.extensions.get("eventgateway")
        # Clients write this extension too; anything but an object cannot hold the result.
        gateway = dict(sent) if isinstance(sent, dict) else {}
        gateway["authorization"] = authorization
        event.extensions["eventgateway"] = gateway
    else:
        # CloudEvents 1.0 extension values must be scalars: carry the result as JSON text.
        event.extensions["authorization"] = _json_encoder.encode(authorization).decode()
    return event


def _retry_after_s(reply: Reply) -> float | None:
    """``Retry-After`` as seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    for name, value in reply.headers:
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            return max(0.0, when.timestamp() - time.time())
    return None
