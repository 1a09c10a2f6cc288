"""Bundles, function logs, invoke, the delivery log: methods of :class:`AsyncEventGateway`.

A mixin, so that the client module stays readable; it sends through the client's
``_send`` and reads ``_calls``, ``_http`` and ``timeout_s``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import httpx

from eventgateway.sdk import _sse, _wire
from eventgateway.sdk._calls import Calls
from eventgateway.sdk._http import failure, stream_timeout
from eventgateway.sdk._wire import Call, Reply

__all__ = ["AsyncOperations"]

T = TypeVar("T")


class AsyncOperations:
    """The operations half of :class:`~eventgateway.sdk.client.AsyncEventGateway`."""

    _calls: Calls
    _http: httpx.AsyncClient
    timeout_s: float

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError  # AsyncEventGateway sends, with retries

    # -- code bundles and function logs ----------------------------------------------------

    async def upload_bundle(self, zip_bytes: bytes) -> dict[str, Any]:
        """Upload a zip of function code; returns ``{"bundleId", "size"}``.

        Raises:
            GatewayError: 400 not a valid zip or a failed dependency install, 413 too big.
        """
        return await self._send(self._calls.upload_bundle(zip_bytes))

    async def bundle_exists(self, bundle_id: str) -> bool:
        """Whether a bundle was uploaded; GatewayError 400 if the id is malformed."""
        return await self._send(self._calls.bundle_exists(bundle_id))

    async def logs(
        self,
        function_id: str,
        *,
        since: str | float | None = None,
        limit: int = 1000,
        filter: str | None = None,
    ) -> list[dict[str, Any]]:
        """A function's log lines, oldest first.

        Args:
            function_id: the function.
            since: a duration back from now (``10m``), an RFC 3339 time or Unix seconds.
            limit: at most this many lines.
            filter: only lines containing this text.

        Returns:
            ``{"timestamp", "requestId", "stream", "message"}`` per line.

        Raises:
            GatewayError: 400 for a malformed ``since`` or ``limit``.
        """
        call = self._calls.logs(function_id, since=since, limit=limit, filter=filter)
        return await self._send(call)

    async def tail_logs(
        self, function_id: str, *, since: str | float | None = None, filter: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Follow a function's log lines as they are written (Server-Sent Events).

        Yields the lines since ``since`` (see :meth:`logs`), then each new one, until the
        gateway closes the stream. Leave the loop with ``break`` inside
        ``contextlib.aclosing(…)`` to close the connection at once.

        Raises:
            GatewayError: the stream could not be opened, or went silent past the
                keep-alives (no answer: ``status`` is ``None``).
        """
        request = self._calls.tail_logs(function_id, since=since, filter=filter)
        try:
            async with self._http.stream(
                request.method,
                request.url,
                headers=request.headers,
                extensions=request.extensions,
                timeout=stream_timeout(self.timeout_s),
            ) as response:
                if response.status_code >= 300:
                    _wire.check(
                        Reply(response.status_code, response.headers, await response.aread())
                    )
                decoder = _sse.SseDecoder()
                async for line in response.aiter_lines():
                    item = decoder.feed(line)
                    if item is not None:
                        yield item
        except httpx.TransportError as exc:
            raise failure(exc)[1] from exc

    # -- calling a function ----------------------------------------------------------------

    async def invoke(
        self,
        function_id: str,
        data: Any = None,
        *,
        event: str | None = None,
        wait_s: float | None = None,
    ) -> dict[str, Any]:
        """Call a function once, now, and return its answer with its log lines.

        The gateway delivers a CloudEvents 1.0 event of type ``event`` (default: the type
        of the function's first subscription, else ``invoke``) carrying ``data``, and
        waits for the function: no queue, no retry.

        Args:
            function_id: the function.
            data: the event's data, any JSON value (``None``: no data).
            event: the event type.
            wait_s: seconds to wait for the answer (default: the client's ``timeout_s``);
                set it above the function's own timeout.

        Returns:
            ``{"ok", "requestId", "eventId", "eventType", "status", "result", "error",
            "durationMs", "logs"}``: ``ok`` is false when the handler raised, crashed or
            timed out, or an HTTP function answered 500 (a failed invocation is not a
            :class:`GatewayError`); ``logs`` are the invocation's lines, START to REPORT,
            for ``python``/``nodejs`` functions.

        Raises:
            GatewayError: 404 no such function, 400 a malformed ``event``.

        .. versionadded:: 0.1.0
        """
        call = self._calls.invoke(
            function_id, data, event=event, wait_s=wait_s, connect_s=self.timeout_s
        )
        return await self._send(call)

    # -- delivery log and dead letters -----------------------------------------------------

    async def get_event(self, event_id: str) -> dict[str, Any]:
        """An accepted event with its deliveries and attempts; GatewayError 404 if unknown."""
        return await self._send(self._calls.get_event(event_id))

    async def list_events(
        self, *, state: str | None = None, subscription_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Recent events, newest first; ``state``: pending, retrying, delivered or dead."""
        call = self._calls.list_events(state=state, subscription_id=subscription_id, limit=limit)
        return await self._send(call)

    async def list_dead_letters(
        self,
        *,
        subscription_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Dead letters, optionally of one subscription and between two times (RFC 3339 or
        Unix seconds)."""
        call = self._calls.list_dead_letters(
            subscription_id=subscription_id, since=since, until=until, limit=limit
        )
        return await self._send(call)

    async def redrive(
        self,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        all: bool = False,
    ) -> int:
        """Deliver dead letters again from attempt 1: by ``ids``, by filter, or ``all``.

        Returns:
            How many were redriven.

        Raises:
            GatewayError: 400 when nothing was named.
        """
        call = self._calls.redrive(
            ids=ids, subscription_id=subscription_id, since=since, until=until, all=all
        )
        return await self._send(call)

    async def purge_dead_letters(
        self,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        all: bool = False,
    ) -> int:
        """Delete dead letters by ``ids`` (unknown ones are skipped), one subscription's, or
        ``all``; returns how many were deleted.

        Raises:
            ValueError: ``ids`` together with a filter.
            GatewayError: 400 when nothing was named.
        """
        calls = self._calls.purge_dead_letters(ids=ids, subscription_id=subscription_id, all=all)
        return sum([await self._send(call) for call in calls])
