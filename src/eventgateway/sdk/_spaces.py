"""Spaces and API keys: methods of :class:`AsyncEventGateway` and :class:`EventGateway`.

Two mixins, so that the client modules stay readable: :class:`AsyncSpaceOperations`
(documented here) and :class:`SpaceOperations`, its blocking twin, whose methods get the
async docstrings when :mod:`~eventgateway.sdk.sync` is imported. Both send through the
client's ``_send`` and build with ``_calls``.

A space is claimed by creating it: the gateway answers with the space's first key, which
has every scope (``admin``, ``emit``, ``read``) and is shown this once. The client that
claimed keeps its own ``api_key``; make a new client with the returned key to use it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, TypeVar

from eventgateway.sdk._calls import Calls
from eventgateway.sdk._wire import Call

__all__ = ["AsyncSpaceOperations", "SpaceOperations"]

T = TypeVar("T")


class AsyncSpaceOperations:
    """The spaces and keys half of :class:`~eventgateway.sdk.client.AsyncEventGateway`."""

    _calls: Calls

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError  # AsyncEventGateway sends, with retries

    async def claim_space(
        self, name: str, *, emit_requires_key: bool | None = None
    ) -> dict[str, Any]:
        """Claim the space ``name``: create it, and receive its first API key.

        On a gateway running open (``eg serve --no-auth``, ``eg dev``) the space is
        recorded and a key returned all the same, but nothing is enforced.

        Args:
            name: the space to claim.
            emit_requires_key: ``True`` makes the Events API of the space private (an
                ``emit`` key is needed to send events); ``False`` keeps ingest public
                (webhooks); ``None`` leaves the gateway's default.

        Returns:
            ``{"name", "apiKey", "keyId", "scopes", "emitRequiresKey"}``: ``apiKey`` is
            the secret, shown this once; store it.

        Raises:
            GatewayError: 409 the space is already claimed (or was deleted), 400 an
                invalid name, 401/403 on a gateway where only the operator may claim.

        .. versionadded:: 0.1.0
        """
        return await self._send(self._calls.claim_space(name, emit_requires_key=emit_requires_key))

    async def get_space(self, name: str | None = None) -> dict[str, Any]:
        """A space's settings (default: the client's space); GatewayError 404 if unknown.

        .. versionadded:: 0.1.0
        """
        return await self._send(self._calls.get_space(name))

    async def list_spaces(self) -> list[dict[str, Any]]:
        """The spaces this client's key may see: all of them for the operator key, the
        key's own space for a space key.

        .. versionadded:: 0.1.0
        """
        return await self._send(self._calls.list_spaces())

    async def update_space(self, *, emit_requires_key: bool) -> dict[str, Any]:
        """Make the client's space private (``emit_requires_key=True``) or public.

        Returns:
            The space's settings as stored.

        Raises:
            GatewayError: 401/403 without an ``admin`` key of the space.

        .. versionadded:: 0.1.0
        """
        return await self._send(self._calls.update_space(emit_requires_key=emit_requires_key))

    async def delete_space(self, name: str | None = None) -> None:
        """Delete a space (default: the client's space) and its keys.

        The space must hold no configuration any more; its name stays taken (only the
        operator may claim it again).

        Raises:
            GatewayError: 400 the space still holds configuration, 404 unknown, 401/403
                without an ``admin`` key of the space.

        .. versionadded:: 0.1.0
        """
        await self._send(self._calls.delete_space(name))

    async def create_key(
        self,
        scopes: Sequence[str],
        *,
        expires_at: str | datetime.datetime | None = None,
    ) -> dict[str, Any]:
        """Create an API key of the client's space.

        Args:
            scopes: what the key may do: ``admin``, ``emit``, ``read`` (a single string is
                one scope).
            expires_at: when the key stops working: an RFC 3339 time, or an aware
                datetime; ``None``: never.

        Returns:
            ``{"keyId", "apiKey", "scopes", "expiresAt"}``: ``apiKey`` is the secret,
            shown this once.

        Raises:
            GatewayError: 400 unknown scopes or a past expiry, 401/403 without an
                ``admin`` key of the space.
            ValueError: ``expires_at`` is a naive datetime.

        .. versionadded:: 0.1.0
        """
        return await self._send(self._calls.create_key(scopes, expires_at=expires_at))

    async def list_keys(self) -> list[dict[str, Any]]:
        """The keys of the client's space: ids, scopes and times, never the secrets.

        .. versionadded:: 0.1.0
        """
        return await self._send(self._calls.list_keys())

    async def revoke_key(self, key_id: str) -> None:
        """Revoke a key of the client's space at once; GatewayError 404 if unknown.

        .. versionadded:: 0.1.0
        """
        await self._send(self._calls.revoke_key(key_id))


class SpaceOperations:
    """The spaces and keys half of :class:`~eventgateway.sdk.sync.EventGateway`."""

    _calls: Calls

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError  # EventGateway sends, with retries

    def claim_space(self, name: str, *, emit_requires_key: bool | None = None) -> dict[str, Any]:
        return self._send(self._calls.claim_space(name, emit_requires_key=emit_requires_key))

    def get_space(self, name: str | None = None) -> dict[str, Any]:
        return self._send(self._calls.get_space(name))

    def list_spaces(self) -> list[dict[str, Any]]:
        return self._send(self._calls.list_spaces())

    def update_space(self, *, emit_requires_key: bool) -> dict[str, Any]:
        return self._send(self._calls.update_space(emit_requires_key=emit_requires_key))

    def delete_space(self, name: str | None = None) -> None:
        self._send(self._calls.delete_space(name))

    def create_key(
        self,
        scopes: Sequence[str],
        *,
        expires_at: str | datetime.datetime | None = None,
    ) -> dict[str, Any]:
        return self._send(self._calls.create_key(scopes, expires_at=expires_at))

    def list_keys(self) -> list[dict[str, Any]]:
        return self._send(self._calls.list_keys())

    def revoke_key(self, key_id: str) -> None:
        self._send(self._calls.revoke_key(key_id))
