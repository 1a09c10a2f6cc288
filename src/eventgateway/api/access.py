"""Adds spaces, keys and auth mode to the Configuration API (wired by ``app.py``).

Kept out of ``app.py`` so the composition root stays one screen per concern: this module
decides which ASGI layers auth mode adds, ``app.py`` only asks for them.
"""

from __future__ import annotations

from typing import Any

from eventgateway.api.auth import AuthGuard, check_space_path
from eventgateway.api.events import Receive, Scope, Send
from eventgateway.api.resources import PathCheck
from eventgateway.api.spaces import create_spaces_app, is_spaces_path
from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.spaces import SpaceAdmin
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


def protect_config_api(app: Any, keyring: KeyRing, settings: Settings) -> Any:
    """``app`` plus the spaces and keys routes, behind :class:`AuthGuard` in auth mode.

    Without auth mode the spaces routes still answer (claiming is harmless there and
    lets ``eg spaces claim`` work against ``eg dev``), but nothing is enforced.
    """
    spaces = create_spaces_app(SpaceAdmin(keyring.store, keyring), auth=settings.auth)
    routed = _WithSpaces(app, spaces)
    if not settings.auth:
        return routed
    return AuthGuard(routed, keyring, claim_policy=settings.claim_policy)


def path_check(settings: Settings) -> PathCheck | None:
    """The subscription/CORS path rule of auth mode (``None``: any path, as the original)."""
    return check_space_path if settings.auth else None
