"""The routing table: an immutable snapshot of who gets which event (contract §2.8, §4).

A :class:`RoutingTable` is built from the whole configuration and never changes; a config
change builds a new one and swaps it in. Lookups are by (method, path, event type)
**across all spaces**, as in the open-source gateway:

* sync: per (method, event type) a :class:`~eventgateway.routing.pathtree.PathTree` of
  paths; when two subscriptions clash (same route in two spaces, or old data that the
  config API would refuse today) the first in (space, subscription id) order wins and the
  others are skipped with a warning;
* async: exact path string match (parameters and wildcards are literal text), fanning
  out to every async subscription of (method, path, type) in (space, subscription id)
  order; a subscription's ``filter`` is compiled here, once per table, into
  :attr:`Target.matcher` (a stored filter that no longer compiles leaves its subscription
  out of routing, with a warning);
* CORS: per method a path tree of CORS configurations, first in (space, id) order wins.

``sync()`` and ``async_targets()`` run per event: what they return is built up front."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from eventgateway.model.entities import KINDS, Cors, EventType, Function, Subscription
from eventgateway.model.runtime_provider import RUNTIME_TYPES, RuntimeLimit
from eventgateway.routing.filters import EventFilter, FilterError, compile_filter
from eventgateway.routing.pathtree import PathTree

__all__ = ["RoutingTable", "SyncMatch", "Target"]

logger = logging.getLogger(__name__)

SYSTEM_EVENT_PREFIX: Final = "eventgateway."


@dataclass(frozen=True, slots=True)
class Target:
    """One subscription, resolved against the configuration of its space.

    Attributes:
        subscription: the subscription.
        function: its function, or ``None`` when the function is missing from the
            configuration (calling it must then fail).
        authorizer: the authorizer function of the subscription's event type in the
            subscriber's space, if there is one and it exists.
        authorizer_id: the event type's ``authorizerId``; set even when that function is
            missing, in which case every delivery must be denied.
        matcher: the compiled ``filter`` of an async subscription; ``None`` when it has
            none (every event of its route is delivered).
    """

    subscription: Subscription
    function: Function | None
    authorizer: Function | None
    authorizer_id: str | None
    matcher: EventFilter | None = None


@dataclass(frozen=True, slots=True)
class SyncMatch:
    """The sync subscription matching a request, with the path parameters it captured.

    ``params`` is ``None`` for the root path ``/`` and a dict (``{}`` when the route has
    no parameters) otherwise, which is what ends up in ``data.params`` of the event.
    """

    target: Target
    params: dict[str, str] | None


_NO_TARGETS: Final[tuple[Target, ...]] = ()

# method → event type → path tree / path → targets; nesting avoids building a key tuple
# per lookup on the hot path.
_SyncIndex = dict[str, dict[str, PathTree[Target]]]
_AsyncIndex = dict[str, dict[str, dict[str, tuple[Target, ...]]]]


class RoutingTable:
    """An immutable routing snapshot; build it with :meth:`build` or :meth:`empty`.

    Attributes:
        revision: the store revision the configuration was read at.
    """

    __slots__ = (
        "_async",
        "_by_id",
        "_cors",
        "_counts",
        "_event_types",
        "_functions",
        "_runtime_limits",
        "_sync",
        "_type_names",
        "revision",
    )

    def __init__(
        self,
        *,
        revision: int,
        sync: _SyncIndex,
        async_: _AsyncIndex,
        cors: dict[str, PathTree[Cors]],
        functions: dict[tuple[str, str], Function],
        event_types: dict[tuple[str, str], EventType],
        counts: dict[str, dict[str, int]],
        by_id: dict[tuple[str, str], Target],
    ) -> None:
        self.revision = revision
        self._by_id = by_id
        self._sync = sync
        self._async = async_
        self._cors = cors
        self._functions = functions
        self._event_types = event_types
        self._counts = counts
        self._runtime_limits: dict[str, RuntimeLimit] | None = None
        # Names a metric label may carry: bounded by the configuration, not by clients.
        self._type_names = frozenset(name for _, name in event_types) | frozenset(
            event_type for by_type in async_.values() for event_type in by_type
        )

    def __repr__(self) -> str:
        return f"<RoutingTable revision={self.revision} spaces={len(self._counts)}>"

    @classmethod
    def empty(cls) -> RoutingTable:
        """A table that routes nothing (revision 0)."""
        return cls.build(event_types=(), functions=(), subscriptions=(), cors=())

    @classmethod
    def build(
        cls,
        *,
        event_types: Iterable[EventType],
        functions: Iterable[Function],
        subscriptions: Iterable[Subscription],
        cors: Iterable[Cors],
        revision: int = 0,
    ) -> RoutingTable:
        """Build a table from the whole configuration of every space.

        Never raises on conflicting data: a sync subscription or CORS configuration that
        does not fit into its path tree is skipped and logged as a warning. Entities with
        the same (space, key) are taken once, the last one given winning.

        Args:
            event_types: all event types.
            functions: all functions.
            subscriptions: all subscriptions (``type`` ``"sync"`` or ``"async"``).
            cors: all CORS configurations.
            revision: the store revision this configuration was read at.

        Returns:
            The new table.
        """
        function_index = {(f.space, f.function_id): f for f in functions}
        event_type_index = {(e.space, e.name): e for e in event_types}
        subscription_index = {(s.space, s.subscription_id): s for s in subscriptions}
        cors_index = {(c.space, c.cors_id): c for c in cors}

        sync: _SyncIndex = {}
        async_lists: dict[str, dict[str, dict[str, list[Target]]]] = {}
        by_id: dict[tuple[str, str], Target] = {}
        for key in sorted(subscription_index):
            subscription = subscription_index[key]
            target = _target(subscription, function_index, event_type_index)
            by_id[key] = target
            if subscription.type == "sync":
                _add_sync(sync, target)
            elif subscription.type == "async":
                if subscription.filter is not None and target.matcher is None:
                    continue  # its filter does not compile (logged)
                by_type = async_lists.setdefault(subscription.method, {})
                by_path = by_type.setdefault(subscription.event_type, {})
                by_path.setdefault(subscription.path, []).append(target)
            else:
                logger.warning(
                    "Subscription %s in space %s skipped: unknown type %r.",
                    subscription.subscription_id,
                    subscription.space,
                    subscription.type,
                )
        async_: _AsyncIndex = {
            method: {
                event_type: {path: tuple(targets) for path, targets in by_path.items()}
                for event_type, by_path in by_type.items()
            }
            for method, by_type in async_lists.items()
        }

        cors_trees: dict[str, PathTree[Cors]] = {}
        for key in sorted(cors_index):
            _add_cors(cors_trees, cors_index[key])

        counts = _count_per_space(
            eventtypes=event_type_index,
            functions=function_index,
            subscriptions=subscription_index,
            cors=cors_index,
        )

        return cls(
            revision=revision,
            sync=sync,
            async_=async_,
            cors=cors_trees,
            functions=function_index,
            event_types=event_type_index,
            counts=counts,
            by_id=by_id,
        )

    def target(self, space: str, subscription_id: str) -> Target | None:
        """A subscription's current target: each delivery is resolved afresh by id."""
        return self._by_id.get((space, subscription_id))

    def sync(self, method: str, path: str, event_type: str) -> SyncMatch | None:
        """The sync subscription for an event, or ``None``.

        Args:
            method: the request method (upper case, as stored in subscriptions).
            path: the raw request path (with the space prefix in hosted mode).
            event_type: the event's type.
        """
        by_type = self._sync.get(method)
        if by_type is None:
            return None
        tree = by_type.get(event_type)
        if tree is None:
            return None
        found = tree.resolve(path)
        if found is None:
            return None
        return SyncMatch(found[0], found[1])

    def async_targets(self, method: str, path: str, event_type: str) -> tuple[Target, ...]:
        """Every async subscription for an event, in (space, subscription id) order.

        The path must equal the subscription's path exactly. Returns a shared empty
        tuple when nothing matches.
        """
        by_type = self._async.get(method)
        if by_type is None:
            return _NO_TARGETS
        by_path = by_type.get(event_type)
        if by_path is None:
            return _NO_TARGETS
        return by_path.get(path, _NO_TARGETS)

    def has_async_type(self, method: str, event_type: str) -> bool:
        """Whether any async subscription, on any path, is for (``method``, ``event_type``)."""
        by_type = self._async.get(method)
        return by_type is not None and event_type in by_type

    def async_paths(self, method: str, event_type: str) -> list[str]:
        """The paths of the async subscriptions for (``method``, ``event_type``), sorted."""
        return sorted(self._async.get(method, {}).get(event_type, {}))

    def is_configured_type(self, event_type: str) -> bool:
        """Whether some space registers ``event_type`` or subscribes to it asynchronously."""
        return event_type in self._type_names

    def subscriptions_for_system_event(self, event_type: str) -> tuple[Target, ...]:
        """The async subscriptions that receive system event ``event_type`` (contract §4.7).

        Those are async subscriptions on ``POST /`` for the system type; for a type
        outside the ``eventgateway.`` namespace there are none.
        """
        if not event_type.startswith(SYSTEM_EVENT_PREFIX):
            return _NO_TARGETS
        return self.async_targets("POST", "/", event_type)

    def cors(self, method: str, path: str) -> Cors | None:
        """The CORS configuration for (``method``, ``path``), or ``None``.

        For a preflight, ``method`` is the value of ``Access-Control-Request-Method``.
        """
        tree = self._cors.get(method)
        if tree is None:
            return None
        found = tree.resolve(path)
        return None if found is None else found[0]

    def function(self, space: str, function_id: str) -> Function | None:
        """The function ``function_id`` of ``space``, or ``None``."""
        return self._functions.get((space, function_id))

    def runtime_limits(self) -> dict[str, RuntimeLimit]:
        """Subscription id → its local-runtime function and ``concurrency`` (made once)."""
        if self._runtime_limits is None:
            self._runtime_limits = {
                sub_id: RuntimeLimit((space, f.function_id), int(f.provider.get("concurrency", 1)))
                for (space, sub_id), t in self._by_id.items()
                if (f := t.function) is not None and f.type in RUNTIME_TYPES
            }
        return self._runtime_limits

    def event_type(self, space: str, name: str) -> EventType | None:
        """The event type ``name`` of ``space``, or ``None``."""
        return self._event_types.get((space, name))

    def counts(self) -> dict[str, dict[str, int]]:
        """Entities per space and kind, for the ``eventgateway_*_total`` gauges.

        Returns a fresh ``{space: {"eventtypes": n, "functions": n, "subscriptions": n,
        "cors": n}}``; entities count whether or not they could be routed.
        """
        return {space: dict(per_kind) for space, per_kind in self._counts.items()}


def _target(
    subscription: Subscription,
    functions: dict[tuple[str, str], Function],
    event_types: dict[tuple[str, str], EventType],
) -> Target:
    space = subscription.space
    event_type = event_types.get((space, subscription.event_type))
    authorizer_id = event_type.authorizer_id if event_type is not None else None
    return Target(
        subscription=subscription,
        function=functions.get((space, subscription.function_id)),
        authorizer=functions.get((space, authorizer_id)) if authorizer_id else None,
        authorizer_id=authorizer_id or None,
        matcher=_matcher(subscription),
    )


def _matcher(subscription: Subscription) -> EventFilter | None:
    """The compiled filter of an async subscription; ``None`` if it has none or it does
    not compile."""
    if subscription.filter is None or subscription.type != "async":
        return None
    try:
        return compile_filter(subscription.filter)
    except FilterError as exc:
        # Written by a gateway with other rules: delivering everything would be worse.
        logger.warning(
            "Async subscription %s in space %s skipped: its filter is invalid: %s",
            subscription.subscription_id,
            subscription.space,
            exc,
        )
        return None


def _add_sync(index: _SyncIndex, target: Target) -> None:
    subscription = target.subscription
    by_type = index.setdefault(subscription.method, {})
    tree = by_type.get(subscription.event_type)
    if tree is None:
        tree = by_type[subscription.event_type] = PathTree()
    try:
        tree.add(subscription.path, target)
    except ValueError as exc:
        logger.warning(
            "Sync subscription %s in space %s (%s %s, event type %s) skipped: %s",
            subscription.subscription_id,
            subscription.space,
            subscription.method,
            subscription.path,
            subscription.event_type,
            exc,
        )


def _add_cors(index: dict[str, PathTree[Cors]], config: Cors) -> None:
    tree = index.get(config.method)
    if tree is None:
        tree = index[config.method] = PathTree()
    try:
        tree.add(config.path, config)
    except ValueError as exc:
        logger.warning(
            "CORS configuration %s in space %s skipped: %s", config.cors_id, config.space, exc
        )


def _count_per_space(
    **keys_by_kind: Iterable[tuple[str, str]],
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for kind, keys in keys_by_kind.items():
        for space, _ in keys:
            per_kind = counts.get(space)
            if per_kind is None:
                per_kind = counts[space] = dict.fromkeys(KINDS, 0)
            per_kind[kind] += 1
    return counts
