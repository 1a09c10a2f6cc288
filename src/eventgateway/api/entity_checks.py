"""Checks that refuse, at registration, what the gateway would only fail on later.

* Sync subscription and CORS paths must fit into the routing table's path trees
  (``routing/table.py``), which hold every space's entries per method (and, for sync
  subscriptions, per event type). An entry that does not fit would be skipped, with a
  warning on every rebuild, and never take effect; here it is a 400 naming the tree's
  complaint, or a 409 when another space already holds the same route.
* An ``http`` function's URL must be one the delivery client can call: the same
  :func:`~eventgateway.providers.http_client.check_url` decides both, so registration and
  calls cannot disagree.

Pure: the caller loads the entities and holds the write lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from eventgateway.errors import ConflictError, ValidationError
from eventgateway.model.entities import Cors, Function, Subscription
from eventgateway.providers.http_client import InvalidURLError, check_url
from eventgateway.routing.pathtree import PathConflictError, PathTree

__all__ = ["check_cors_route", "check_http_url", "check_sync_route"]

# The templates of model/validate.py and api/resources.py.
_FUNCTION_INVALID: Final = "Function doesn't validate. Validation error: "
_SUBSCRIPTION_EXISTS: Final = 'Subscription "{}" already exists.'
_CORS_EXISTS: Final = 'CORS configuration "{}" already exists.'


def check_http_url(function: Function) -> None:
    """Refuse an ``http`` function whose ``provider.url`` every call would refuse.

    Raises:
        ValidationError: ``Function doesn't validate. Validation error: provider.url
            'ftp://x/' cannot be called: the scheme must be http or https, not 'ftp'``.
    """
    url = function.provider.get("url") if function.type == "http" else None
    if not isinstance(url, str):
        return
    try:
        check_url(url)
    except InvalidURLError as exc:
        raise ValidationError(
            f"{_FUNCTION_INVALID}provider.url {url!r} cannot be called: {exc}"
        ) from exc


def _tree_of(paths: Iterable[str]) -> PathTree[None]:
    tree: PathTree[None] = PathTree()
    for path in paths:
        try:
            tree.add(path, None)
        except PathConflictError:
            # Stored routes that clash among themselves (written before a rule existed)
            # must not block unrelated new ones.
            continue
    return tree


def check_sync_route(subscription: Subscription, others: Iterable[Subscription]) -> None:
    """Refuse a new sync subscription whose route is taken or does not fit (contract §4.2).

    The route is checked against the sync routes of **every** space: the routing table
    holds them all in one tree per (method, event type), so a route that clashes with
    another space's (``/acme/hook`` next to ``/:tenant/hook``) would silently take that
    route's place, or be skipped itself, depending on the (space, ID) order.

    Args:
        subscription: the new subscription.
        others: every stored subscription, of every space.

    Raises:
        ConflictError: another space has the same route (sync IDs leave the function out,
            so an equal ID is the same route).
        ValidationError: ``Subscription path conflict: <tree error>``, or a parameter
            named twice (``/users/:id/:id``).
    """
    names = [part[1:] for part in subscription.path.split("/") if part[:1] in (":", "*")]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # only the last value would reach the function, under that name
        raise ValidationError(
            f"Subscription path {subscription.path} names parameter {repeated[0]!r} twice."
        )
    others = list(others)
    if any(
        s.subscription_id == subscription.subscription_id and s.space != subscription.space
        for s in others
    ):
        raise ConflictError(_SUBSCRIPTION_EXISTS.format(subscription.subscription_id))
    # Built in the table's (space, ID) order, so the routes kept here are the live ones.
    # Tree conflicts are pairwise and symmetric, so fitting after all of them means the
    # new route fits wherever its (space, ID) puts it, and displaces none of them.
    tree = _tree_of(
        path
        for _, _, path in sorted(
            (s.space, s.subscription_id, s.path)
            for s in others
            if (s.type, s.method, s.event_type)
            == ("sync", subscription.method, subscription.event_type)
        )
    )
    try:
        tree.add(subscription.path, None)
    except PathConflictError as exc:
        raise ValidationError(f"Subscription path conflict: {exc}") from exc


def check_cors_route(cors: Cors, others: Iterable[Cors], *, replacing: bool = False) -> None:
    """Refuse a CORS configuration the routing table would skip.

    Args:
        cors: the new or updated configuration.
        others: every stored CORS configuration, of every space.
        replacing: ``cors`` updates a stored configuration (same method and path). It is
            then checked in the table's own order, (space, ID), so the configuration that
            routing keeps stays updatable even among old clashing ones.

    Raises:
        ConflictError: on create, another space has the same method and path.
        ValidationError: ``CORS configuration path conflict: <tree error>``.
    """
    same_method = [c for c in others if c.method == cors.method]
    if not replacing and any(
        c.cors_id == cors.cors_id and c.space != cors.space for c in same_method
    ):
        raise ConflictError(_CORS_EXISTS.format(cors.cors_id))
    before = sorted(
        (c.space, c.cors_id, c.path)
        for c in same_method
        if (c.space, c.cors_id) != (cors.space, cors.cors_id)
        and (not replacing or (c.space, c.cors_id) < (cors.space, cors.cors_id))
    )
    tree = _tree_of(path for _, _, path in before)
    try:
        tree.add(cors.path, None)
    except PathConflictError as exc:
        raise ValidationError(f"CORS configuration path conflict: {exc}") from exc
