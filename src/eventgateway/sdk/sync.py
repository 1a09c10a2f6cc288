"""The blocking client of the gateway: :class:`EventGateway`.

The same methods as :class:`~eventgateway.sdk.client.AsyncEventGateway`, built by the same
:class:`~eventgateway.sdk._calls.Calls`, sent on one pooled ``httpx.Client``. Each method's
documentation is the async one's (copied onto it when this module is imported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from eventgateway.sdk import _sse, _wire
from eventgateway.sdk._base import ClientBase
from eventgateway.sdk._emit import DEFAULT_SOURCE
from eventgateway.sdk._http import (
    USER_AGENT,
    Verify,
    failure,
    send,
    stream_timeout,
    tls_verify,
)
from eventgateway.sdk._replay import ReplayOperations
from eventgateway.sdk._spaces import SpaceOperations
from eventgateway.sdk._wire import Call, EmitResult, GatewayError, Reply
from eventgateway.sdk.client import AsyncEventGateway

__all__ = ["EventGateway"]

T = TypeVar("T")
C = TypeVar("C", bound=type)


def _documented_like(source: type) -> Callable[[C], C]:
    """Give each public method of the decorated class (and of its mixins) without a
    docstring ``source``'s."""

    def decorate(cls: C) -> C:
        for klass in cls.__mro__[:-1]:  # all but object
            for name, function in vars(klass).items():
                original = getattr(source, name, None)
                if callable(function) and not function.__doc__ and original is not None:
                    function.__doc__ = original.__doc__
        return cls

    return decorate


@_documented_like(AsyncEventGateway)
class EventGateway(ClientBase, SpaceOperations, ReplayOperations):
    """A blocking client of one gateway and space: ``EventGateway(url=…, space=…).emit(…)``.

    Use it as ``with EventGateway(…) as gateway:`` or call :meth:`close`; one instance
    reuses its connections. Arguments as :class:`AsyncEventGateway`'s::

        gateway = EventGateway(url="http://localhost:4000", space="acme-crm")
        gateway.emit(event="user.created", data=user)

    Raises:
        ValueError: a URL is not ``http(s)://host[:port][/path]``, a hosted-style host
            names a space other than ``space`` or is not under ``domain``, or ``retries``
            is negative.

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
        self._http = httpx.Client(
            timeout=timeout_s, headers={"User-Agent": USER_AGENT}, verify=tls_verify(verify)
        )

    def __enter__(self) -> EventGateway:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        return send(self._http, call, self.retries)

    def emit(
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
        return self._send(
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

    def emit_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        path: str | None = None,
        idempotent: bool = False,
    ) -> EmitResult:
        return self._send(self._calls.emit_batch(events, path=path, idempotent=idempotent))

    def create_function(
        self,
        function_id: str,
        type: str,
        provider: Mapping[str, Any],
        *,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        call = self._calls.create_function(
            function_id, type, provider, metadata=metadata, **options
        )
        return self._send(call)

    def update_function(
        self,
        function_id: str,
        type: str,
        provider: Mapping[str, Any],
        *,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        call = self._calls.update_function(
            function_id, type, provider, metadata=metadata, **options
        )
        return self._send(call)

    def get_function(self, function_id: str) -> dict[str, Any]:
        return self._send(self._calls.get_function(function_id))

    def list_functions(self, **metadata: str) -> list[dict[str, Any]]:
        return self._send(self._calls.list_functions(metadata))

    def delete_function(self, function_id: str) -> None:
        self._send(self._calls.delete_function(function_id))

    def create_event_type(
        self,
        name: str,
        *,
        authorizer_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        call = self._calls.create_event_type(name, authorizer_id=authorizer_id, metadata=metadata)
        return self._send(call)

    def update_event_type(
        self,
        name: str,
        *,
        authorizer_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        call = self._calls.update_event_type(name, authorizer_id=authorizer_id, metadata=metadata)
        return self._send(call)

    def get_event_type(self, name: str) -> dict[str, Any]:
        return self._send(self._calls.get_event_type(name))

    def list_event_types(self, **metadata: str) -> list[dict[str, Any]]:
        return self._send(self._calls.list_event_types(metadata))

    def delete_event_type(self, name: str) -> None:
        self._send(self._calls.delete_event_type(name))

    def subscribe(
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
        return self._send(call)

    def update_subscription(self, subscription_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send(self._calls.update_subscription(subscription_id, body))

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._send(self._calls.get_subscription(subscription_id))

    def list_subscriptions(self, **metadata: str) -> list[dict[str, Any]]:
        return self._send(self._calls.list_subscriptions(metadata))

    def unsubscribe(self, subscription_id: str) -> None:
        self._send(self._calls.unsubscribe(subscription_id))

    def create_cors(
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
        call = self._calls.create_cors(
            method,
            path,
            allowed_origins=allowed_origins,
            allowed_methods=allowed_methods,
            allowed_headers=allowed_headers,
            allow_credentials=allow_credentials,
            metadata=metadata,
        )
        return self._send(call)

    def update_cors(self, cors_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send(self._calls.update_cors(cors_id, body))

    def list_cors(self, **metadata: str) -> list[dict[str, Any]]:
        return self._send(self._calls.list_cors(metadata))

    def delete_cors(self, cors_id: str) -> None:
        self._send(self._calls.delete_cors(cors_id))

    def upload_bundle(self, zip_bytes: bytes) -> dict[str, Any]:
        return self._send(self._calls.upload_bundle(zip_bytes))

    def bundle_exists(self, bundle_id: str) -> bool:
        return self._send(self._calls.bundle_exists(bundle_id))

    def logs(
        self,
        function_id: str,
        *,
        since: str | float | None = None,
        limit: int = 1000,
        filter: str | None = None,
    ) -> list[dict[str, Any]]:
        return self._send(self._calls.logs(function_id, since=since, limit=limit, filter=filter))

    def tail_logs(
        self, function_id: str, *, since: str | float | None = None, filter: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Follow a function's log lines as they are written (Server-Sent Events).

        Yields the lines since ``since`` (see :meth:`logs`), then each new one, until the
        gateway closes the stream. Leave the loop with ``break`` inside
        ``contextlib.closing(…)`` to close the connection at once.

        Raises:
            GatewayError: the stream could not be opened, or went silent past the
                keep-alives (no answer: ``status`` is ``None``).
        """
        request = self._calls.tail_logs(function_id, since=since, filter=filter)
        try:
            with self._http.stream(
                request.method,
                request.url,
                headers=request.headers,
                extensions=request.extensions,
                timeout=stream_timeout(self.timeout_s),
            ) as response:
                if response.status_code >= 300:
                    _wire.check(Reply(response.status_code, response.headers, response.read()))
                decoder = _sse.SseDecoder()
                for line in response.iter_lines():
                    item = decoder.feed(line)
                    if item is not None:
                        yield item
        except httpx.TransportError as exc:
            raise failure(exc)[1] from exc

    def invoke(
        self,
        function_id: str,
        data: Any = None,
        *,
        event: str | None = None,
        wait_s: float | None = None,
    ) -> dict[str, Any]:
        call = self._calls.invoke(
            function_id, data, event=event, wait_s=wait_s, connect_s=self.timeout_s
        )
        return self._send(call)

    def get_event(self, event_id: str) -> dict[str, Any]:
        return self._send(self._calls.get_event(event_id))

    def list_events(
        self, *, state: str | None = None, subscription_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        call = self._calls.list_events(state=state, subscription_id=subscription_id, limit=limit)
        return self._send(call)

    def list_dead_letters(
        self,
        *,
        subscription_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        call = self._calls.list_dead_letters(
            subscription_id=subscription_id, since=since, until=until, limit=limit
        )
        return self._send(call)

    def redrive(
        self,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        all: bool = False,
    ) -> int:
        call = self._calls.redrive(
            ids=ids, subscription_id=subscription_id, since=since, until=until, all=all
        )
        return self._send(call)

    def purge_dead_letters(
        self,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        all: bool = False,
    ) -> int:
        calls = self._calls.purge_dead_letters(ids=ids, subscription_id=subscription_id, all=all)
        return sum(self._send(call) for call in calls)

    def status(self) -> bool:
        try:
            return self._send(self._calls.status())
        except GatewayError:
            return False
