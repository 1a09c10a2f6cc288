"""Adds spaces, keys and auth mode to the Configuration API (wired by ``app.py``).

Kept out of ``app.py`` so the composition root stays one screen per concern: this module
decides which ASGI layers auth mode adds, ``app.py`` only asks for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eventgateway.api.auth import AuthGuard, check_space_path
from eventgateway.api.events import Receive, Scope, Send
from eventgateway.api.resources import PathCheck
from eventgateway.api.spaces import create_spaces_app, is_spaces_path
from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.spaces import Forget, Holdings, SpaceAdmin
from eventgateway.queue.log import DeliveryLog
from eventgateway.runtime.base import LogStore
from eventgateway.settings import Settings

__all__ = ["path_check", "protect_config_api"]


class _WithSpaces:
    """Sends ``/v1/spaces``, ``/v1/spaces/{space}`` and ``…/keys…`` to the spaces app."""

    def __init__(self, app: Any, spaces: Any) -> None:
        self._app = app
        self._spaces = spaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_spaces_path(scope["path"]):
            await self._spaces(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def protect_config_api(
    app: Any,
    keyring: KeyRing,
    settings: Settings,
    *,
    delivery_log: DeliveryLog | None = None,
    also_forget: Sequence[DeliveryLog] = (),
    function_logs: LogStore | None = None,
    end_functions: Callable[[str], Awaitable[None]] | None = None,
) -> Any:
    """``app`` plus the spaces and keys routes, behind :class:`AuthGuard` in auth mode.

    Without auth mode the spaces routes still answer (claiming is harmless there and
    lets ``eg spaces claim`` work against ``eg dev``), but nothing is enforced.

    In auth mode, deleting a space waits for ``delivery_log`` (the one the API serves)
    to hold none of its dead letters or unsettled deliveries, then forgets the space
    there, in ``also_forget`` (the at-most-once buffer: its de-duplication) and in
    ``function_logs``, after ``end_functions`` stopped its running functions, which
    would otherwise log on under the name (``docs/security.md``). Without auth mode
    every log is open to anyone anyway, and a deleted space's logs stay until retention,
    as before.
    """
    holdings: Holdings | None = None
    forget: Forget | None = None
    if settings.auth and delivery_log is not None:
        holdings = delivery_log.holdings
        forget = _forgetting([delivery_log, *also_forget], function_logs, end_functions)
    admin = SpaceAdmin(
        keyring.store,
        keyring,
        holdings=holdings,
        forget=forget,
        max_keys=settings.limits.max_keys_per_space,
    )
    spaces = create_spaces_app(admin, auth=settings.auth)
    routed = _WithSpaces(app, spaces)
    if not settings.auth:
        return routed
    return AuthGuard(routed, keyring, claim_policy=settings.claim_policy)


def _forgetting(
    logs: Sequence[DeliveryLog],
    function_logs: LogStore | None,
    end_functions: Callable[[str], Awaitable[None]] | None,
) -> Forget:
    async def forget(space: str) -> None:
        if end_functions is not None:
            await end_functions(space)
        for log in logs:
            await log.forget_space(space)
        if function_logs is not None:
            await function_logs.forget_space(space)

    return forget


def path_check(settings: Settings) -> PathCheck | None:
    """The subscription/CORS path rule of auth mode (``None``: any path, as the original)."""
    return check_space_path if settings.auth else None
