"""Replay: the request (:class:`ReplayCalls`, a mixin of
:class:`~eventgateway.sdk._calls.Calls`, no I/O) and the client methods
(:class:`AsyncReplayOperations`, documented here, and its blocking twin
:class:`ReplayOperations`, which gets the async docstring when
:mod:`~eventgateway.sdk.sync` is imported).

A replay is not idempotent (each one delivers again), so it is sent again only when the
gateway never received it or refused it whole (429 with ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from eventgateway.sdk import _wire
from eventgateway.sdk._wire import Call, Reply

if TYPE_CHECKING:
    from eventgateway.sdk._calls import Calls

__all__ = ["AsyncReplayOperations", "ReplayCalls", "ReplayOperations"]

T = TypeVar("T")


class ReplayCalls:
    """The replay half of :class:`~eventgateway.sdk._calls.Calls`."""

    def _config(
        self,
        method: str,
        path: str,
        parse: Callable[[Reply], T],
        *,
        body: Mapping[str, Any] | None = None,
    ) -> Call[T]:
        raise NotImplementedError  # Calls builds Configuration API requests

    def replay(
        self,
        *,
        ids: Sequence[str] | None,
        subscription_id: str | None,
        since: str | float | None,
        until: str | float | None,
    ) -> Call[dict[str, Any]]:
        body = {
            "ids": None if ids is None else list(ids),
            "subscriptionId": subscription_id,
            "since": _wire.time_param(since),
            "until": _wire.time_param(until),
        }
        present = {key: value for key, value in body.items() if value is not None}
        return self._config("POST", "events/replay", _wire.to_object, body=present)


class AsyncReplayOperations:
    """The replay method of :class:`~eventgateway.sdk.client.AsyncEventGateway`."""

    _calls: Calls

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError  # AsyncEventGateway sends, with retries

    async def replay(
        self,
        ids: Sequence[str] | None = None,
        *,
        subscription_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
    ) -> dict[str, Any]:
        """Deliver events again: a new delivery to each subscription they were delivered
        to (that still exists), beside the old ones, with the same CloudEvent.

        Args:
            ids: the events' ids; or, instead, a window of received time:
            since: from (required for a window): a duration back from now (``10m``), an
                RFC 3339 time or Unix seconds.
            until: to (exclusive), in the same forms.
            subscription_id: only to this subscription (and only events delivered to it).

        Returns:
            ``{"replayed": deliveries made, "events": events selected, "skipped":
            {"deletedSubscription": n, "atMostOnce": n, "filtered": n}}``.

        Raises:
            GatewayError: 400 nothing (or too much: over 10,000 events) selected, 404 ids
                that name no stored event, 429 the queue has no room. Nothing is
                replayed in any of these cases.

        .. versionadded:: 0.2.0
        """
        call = self._calls.replay(
            ids=ids, subscription_id=subscription_id, since=since, until=until
        )
        return await self._send(call)


class ReplayOperations:
    """The replay method of :class:`~eventgateway.sdk.sync.EventGateway`."""

    _calls: Calls

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError  # EventGateway sends, with retries

    def replay(
        self,
        ids: Sequence[str] | None = None,
        *,
        subscription_id: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
    ) -> dict[str, Any]:
        call = self._calls.replay(
            ids=ids, subscription_id=subscription_id, since=since, until=until
        )
        return self._send(call)
