"""The hooks :class:`~eventgateway.api.resources.ConfigResources` calls out to, and filters.

Checks that need more than the store (can this function run here? may this space take
that path?) are passed in by the composition root, so the resource rules stay one thing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from eventgateway.model.entities import Cors, Function, Subscription

__all__ = ["FunctionCheck", "PathCheck", "all_checks", "matches_filters"]

FunctionCheck = Callable[[Function], Awaitable[None] | None]
"""Raises :class:`ValidationError` when a function cannot be run here (may be async)."""

PathCheck = Callable[[Subscription | Cors], None]
"""Raises :class:`ValidationError` when a new subscription or CORS path is not its space's
to take (auth mode's path isolation, ``api/auth.py``)."""


def all_checks(*checks: FunctionCheck) -> FunctionCheck:
    """One check running ``checks`` in order; the first refusal is the answer."""

    async def check(function: Function) -> None:
        for one in checks:
            checking = one(function)
            if checking is not None:
                await checking

    return check


def matches_filters(metadata: Mapping[str, str] | None, filters: Mapping[str, str]) -> bool:
    """Whether an entity's metadata has every ``filters`` key with exactly that value."""
    if not filters:
        return True
    if not metadata:
        return False
    return all(metadata.get(key) == value for key, value in filters.items())
