"""The asyncio client of the gateway: :class:`AsyncEventGateway`.

Every method builds its request with :class:`~eventgateway.sdk._calls.Calls` and sends it
on one pooled ``httpx.AsyncClient`` with :func:`~eventgateway.sdk._http.send_async`
(retrying what the gateway refused or never received, see
:func:`~eventgateway.sdk._retry.retry_delay_s`); httpx errors become
:class:`GatewayError` there and never escape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from eventgateway.sdk._async_ops import AsyncOperations
from eventgateway.sdk._base import ClientBase
from eventgateway.sdk._emit import DEFAULT_SOURCE
from eventgateway.sdk._http import USER_AGENT, Verify, send_async, tls_verify
from eventgateway.sdk._replay import AsyncReplayOperations
from eventgateway.sdk._spaces import AsyncSpaceOperations
from eventgateway.sdk._wire import Call, EmitResult, GatewayError

__all__ = ["AsyncEventGateway"]

T = TypeVar("T")


class AsyncEventGateway(ClientBase, AsyncOperations, AsyncSpaceOperations, AsyncReplayOperations):
    """A client of one gateway and space, for asyncio code.

    Use it as ``async with AsyncEventGateway(…) as gateway:`` or call :meth:`close`; one
    instance reuses its connections across calls and tasks.

    Args:
        url: the Events API, e.g. ``http://localhost:4000`` (``localhost:4000`` means
            ``http://``); its host may name the space (``<space>.localhost``, or
            ``<space>.<domain>`` with ``domain``, or a first label equal to ``space``).
            A last path segment naming the space is dropped; another path is a prefix.
        config_url: the Configuration API; default: ``url``'s scheme and host on port 4001,
            without the space label of a hosted-style host.
        space: the space of configuration calls and of the default emit path; default:
            the one a hosted-style URL names, else ``default``.
        domain: the gateway's ``--domain``, for a ``<space>.<domain>`` URL without ``space``.
        api_key: sent as ``Authorization: Bearer <key>`` on every request when set.
        timeout_s: per-request timeout in seconds (connect, read, write, pool).
        verify: how an ``https://`` gateway's certificate is checked: ``True`` against the
            usual public CAs, a path to a PEM CA bundle (a private CA), an
            :class:`ssl.SSLContext`, or ``False`` not at all (never outside tests).
        retries: retries, with backoff, of what the gateway refused (429/503 with
            ``Retry-After``) or never received in full (connection failures, write and
            pool timeouts). A request that may have been acted on (read timeout, dropped
            connection) is not sent again unless idempotent (:meth:`emit`).

    Raises:
        ValueError: a URL is not ``http(s)://host[:port][/path]``, its host names another
            space, a hosted host is not under ``domain``, or ``retries`` < 0.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str = "http://localhost:4000",
        *,
        config_url: str | None = None,
        space: str | None = None,
        domain: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        verify: Verify = True,
    ) -> None:
        self._configure(
            url,
            config_url=config_url,
            space=space,
            domain=domain,
            api_key=api_key,
            timeout_s=timeout_s,
            retries=retries,
        )
        self._http = httpx.AsyncClient(
            timeout=timeout_s, headers={"User-Agent": USER_AGENT}, verify=tls_verify(verify)
        )

    async def __aenter__(self) -> AsyncEventGateway:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        return await send_async(self._http, call, self.retries)

    # -- Events API ------------------------------------------------------------------------

    async def emit(
        self,
        event: str | None = None,
        data: Any = None,
        *,
        cloudevent: Mapping[str, Any] | None = None,
        source: str = DEFAULT_SOURCE,
        id: str | None = None,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        data_content_type: str = "application/json",
        mode: str = "structured",
        partition_key: str | None = None,
        idempotent: bool = False,
    ) -> EmitResult:
        """Send one event to the Events API.

        Args:
            event: the event type, e.g. ``user.created``.
            data: the payload: any JSON value, or ``bytes``/``str`` for other content types.
            cloudevent: a complete event mapping (1.0 or 0.1) to send as is, instead of
                ``event``/``data``.
            source: the CloudEvents ``source``.
            id: the event id (default: a new UUID); retries send the same id, and the
                gateway delivers an id from one source to async subscriptions once.
            path: the Events API path; default ``/<space>/`` (``/`` for a hosted-style URL).
            headers: extra request headers; they win over the SDK's.
            data_content_type: the content type of ``data``.
            mode: ``structured`` (CloudEvents JSON), ``binary`` (``ce-*`` headers, the data
                as the body) or ``legacy`` (the original's ``Event`` header).
            partition_key: the ``partitionkey`` extension (ordered subscriptions).
            idempotent: also retry after a read timeout or a dropped connection. Safe
                only where all matching subscriptions are async and at-least-once (the
                default): the gateway drops a repeated (``source``, ``id``) for those,
                but runs a sync function per copy. Needs an id (not ``legacy`` mode).

        Returns:
            202 when the event was queued; a sync subscription's response otherwise.

        Raises:
            GatewayError: a status of 400 or more (429/503 once ``retries`` are spent), or
                no answer.
            ValueError: arguments that do not go together (``cloudevent`` with ``event``,
                an unknown ``mode``, ``id`` or ``idempotent`` in legacy mode).
            TypeError: ``data`` cannot be encoded.
        """
        return await self._send(
            self._calls.emit(
                event,
                data,
                cloudevent=cloudevent,
                source=source,
                id=id,
                path=path,
                headers=headers,
                data_content_type=data_content_type,
                mode=mode,
                partition_key=partition_key,
                idempotent=idempotent,
            )
        )

    async def emit_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        path: str | None = None,
        idempotent: bool = False,
    ) -> EmitResult:
        """Send CloudEvents 1.0 events (mappings, sent as given) in one batch request.

        Each is routed on its own, to async subscriptions only; ``idempotent`` as in
        :meth:`emit` (every event needs an ``id``). Returns and raises as :meth:`emit`.
        """
        call = self._calls.emit_batch(events, path=path, idempotent=idempotent)
        return await self._send(call)

    # -- Configuration API: every call is scoped to ``space``; GatewayError with the
    # -- server's status and message (400 invalid, 404 not found, 409 exists) on failure.

    async def create_function(
        self,
        function_id: str,
        type: str,
        provider: Mapping[str, Any],
        *,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Register a function.

        Args:
            function_id: the function's id in the space.
            type: ``http``, ``python``, ``nodejs``, ``awslambda`` …
            provider: the type's settings, e.g. ``{"url": "http://…"}``.
            metadata: string labels, usable as list filters.
            options: more fields as the API names them: ``signingSecrets``, ``contentMode``.

        Returns:
            The function as stored.

        Raises:
            GatewayError: 400 invalid, 409 already registered.
        """
        call = self._calls.create_function(
            function_id, type, provider, metadata=metadata, **options
        )
        return await self._send(call)

    async def update_function(
        self,
        function_id: str,
        type: str,
        provider: Mapping[str, Any],
        *,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Replace a function's type, provider, metadata and options (as :meth:`create_function`).

        Raises:
            GatewayError: 400 invalid, 404 unknown.
        """
        call = self._calls.update_function(
            function_id, type, provider, metadata=metadata, **options
        )
        return await self._send(call)

    async def get_function(self, function_id: str) -> dict[str, Any]:
        """The function ``function_id``; GatewayError 404 if there is none."""
        return await self._send(self._calls.get_function(function_id))

    async def list_functions(self, **metadata: str) -> list[dict[str, Any]]:
        """The space's functions having every given metadata ``key=value``."""
        return await self._send(self._calls.list_functions(metadata))

    async def delete_function(self, function_id: str) -> None:
        """Delete a function; GatewayError 404 if unknown, 400 if still subscribed."""
        await self._send(self._calls.delete_function(function_id))

    async def create_event_type(
        self,
        name: str,
        *,
        authorizer_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Register an event type, optionally guarded by an authorizer function.

        Raises:
            GatewayError: 400 invalid, 409 already exists.
        """
        call = self._calls.create_event_type(name, authorizer_id=authorizer_id, metadata=metadata)
        return await self._send(call)

    async def update_event_type(
        self,
        name: str,
        *,
        authorizer_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Replace an event type's authorizer and metadata (``None`` removes them).

        Raises:
            GatewayError: 400 invalid, 404 unknown.
        """
        call = self._calls.update_event_type(name, authorizer_id=authorizer_id, metadata=metadata)
        return await self._send(call)

    async def get_event_type(self, name: str) -> dict[str, Any]:
        """The event type ``name``; GatewayError 404 if there is none."""
        return await self._send(self._calls.get_event_type(name))

    async def list_event_types(self, **metadata: str) -> list[dict[str, Any]]:
        """The space's event types having every given metadata ``key=value``."""
        return await self._send(self._calls.list_event_types(metadata))

    async def delete_event_type(self, name: str) -> None:
        """Delete an event type; GatewayError 404 if unknown, 400 if in use."""
        await self._send(self._calls.delete_event_type(name))

    async def subscribe(
        self,
        event_type: str,
        function_id: str,
        *,
        type: str = "async",
        path: str | None = None,
        method: str | None = None,
        metadata: Mapping[str, str] | None = None,
        filter: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Subscribe a function to an event type on a path.

        Args:
            event_type: the event type (registered in the space).
            function_id: the function to call.
            type: ``async`` (queued, retried) or ``sync`` (its reply answers the emit).
            path: the Events API path; default ``/<space>/``, where :meth:`emit` sends.
            method: the HTTP method (the gateway's default: POST).
            metadata: string labels.
            filter: async only: an event pattern (docs/filters.md) events must match.
            options: ``delivery``, ``retryPolicy``, ``ordered`` as the API names them.

        Returns:
            The subscription, with its ``subscriptionId``.

        Raises:
            GatewayError: 400 invalid or unknown type/function, 409 already exists.
        """
        call = self._calls.subscribe(
            event_type,
            function_id,
            type=type,
            path=path,
            method=method,
            metadata=metadata,
            filter=filter,
            **options,
        )
        return await self._send(call)

    async def update_subscription(
        self, subscription_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT a subscription's full body (identity fields repeated unchanged).

        Raises:
            GatewayError: 400 invalid or an identity field changed, 404 unknown.
        """
        return await self._send(self._calls.update_subscription(subscription_id, body))

    async def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription ``subscription_id``; GatewayError 404 if there is none."""
        return await self._send(self._calls.get_subscription(subscription_id))

    async def list_subscriptions(self, **metadata: str) -> list[dict[str, Any]]:
        """The space's subscriptions having every given metadata ``key=value``."""
        return await self._send(self._calls.list_subscriptions(metadata))

    async def unsubscribe(self, subscription_id: str) -> None:
        """Delete a subscription; GatewayError 404 if unknown."""
        await self._send(self._calls.unsubscribe(subscription_id))

    async def create_cors(
        self,
        method: str,
        path: str,
        *,
        allowed_origins: Sequence[str] | None = None,
        allowed_methods: Sequence[str] | None = None,
        allowed_headers: Sequence[str] | None = None,
        allow_credentials: bool | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Configure CORS for an Events API (method, path); omitted lists get defaults.

        Returns:
            The configuration, with its ``corsId`` (e.g. ``GET%2Fusers``).

        Raises:
            GatewayError: 400 invalid (the method must be upper case), 409 exists.
        """
        call = self._calls.create_cors(
            method,
            path,
            allowed_origins=allowed_origins,
            allowed_methods=allowed_methods,
            allowed_headers=allowed_headers,
            allow_credentials=allow_credentials,
            metadata=metadata,
        )
        return await self._send(call)

    async def update_cors(self, cors_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a CORS configuration's full body; ``cors_id`` as returned (``GET%2Fusers``)."""
        return await self._send(self._calls.update_cors(cors_id, body))

    async def list_cors(self, **metadata: str) -> list[dict[str, Any]]:
        """The space's CORS configurations having every given metadata ``key=value``."""
        return await self._send(self._calls.list_cors(metadata))

    async def delete_cors(self, cors_id: str) -> None:
        """Delete a CORS configuration; GatewayError 404 if unknown."""
        await self._send(self._calls.delete_cors(cors_id))

    async def status(self) -> bool:
        """Whether the Configuration API answers ``GET /v1/status`` with 2xx (no retries;
        ``False`` when it cannot be reached)."""
        try:
            return await self._send(self._calls.status())
        except GatewayError:
            return False
