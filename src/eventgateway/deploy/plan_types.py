"""The data of a deploy plan: what the gateway holds (:class:`Current`), one write
(:class:`Action`) and the ordered writes (:class:`Plan`). Made by
:mod:`eventgateway.deploy.plan`, performed by :mod:`eventgateway.deploy.apply`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from eventgateway.deploy.plan_bodies import Kind, Resource

__all__ = ["Action", "Current", "Kind", "Op", "Plan", "Resource"]

Op = Literal["create", "update", "delete"]

_SIGNS: Final[dict[Op, str]] = {"create": "+", "update": "~", "delete": "-"}
_VERBS: Final[dict[Op, str]] = {"create": "creating", "update": "updating", "delete": "deleting"}


def _owned(resource: Resource, metadata: Mapping[str, str]) -> bool:
    found = resource.get("metadata") or {}
    return all(found.get(key) == value for key, value in metadata.items())


def _split(
    items: Iterable[Resource], metadata: Mapping[str, str]
) -> tuple[tuple[Resource, ...], tuple[Resource, ...]]:
    listed = tuple(items)
    return (
        tuple(item for item in listed if _owned(item, metadata)),
        tuple(item for item in listed if not _owned(item, metadata)),
    )


@dataclass(frozen=True)
class Current:
    """The resources of one space as the gateway lists them, split by owner.

    ``functions``, ``subscriptions``, ``event_types`` and ``cors`` belong to the service
    (metadata ``service`` and ``stage`` match); the ``other_*`` ones are the rest of the
    space: other services, other stages, and resources without metadata. They matter for
    ids already taken and for event types still in use.

    .. versionadded:: 0.1.0
    """

    functions: tuple[Resource, ...] = ()
    subscriptions: tuple[Resource, ...] = ()
    event_types: tuple[Resource, ...] = ()
    cors: tuple[Resource, ...] = ()
    other_functions: tuple[Resource, ...] = ()
    other_subscriptions: tuple[Resource, ...] = ()
    other_event_types: tuple[Resource, ...] = ()
    other_cors: tuple[Resource, ...] = ()

    @classmethod
    def of_space(
        cls,
        metadata: Mapping[str, str],
        *,
        functions: Iterable[Resource] = (),
        subscriptions: Iterable[Resource] = (),
        event_types: Iterable[Resource] = (),
        cors: Iterable[Resource] = (),
    ) -> Current:
        """Split the space's unfiltered lists by ``metadata`` (``ServiceSpec.metadata``)."""
        own_functions, other_functions = _split(functions, metadata)
        own_subscriptions, other_subscriptions = _split(subscriptions, metadata)
        own_event_types, other_event_types = _split(event_types, metadata)
        own_cors, other_cors = _split(cors, metadata)
        return cls(
            own_functions,
            own_subscriptions,
            own_event_types,
            own_cors,
            other_functions,
            other_subscriptions,
            other_event_types,
            other_cors,
        )


@dataclass(frozen=True)
class Action:
    """One write to the Configuration API.

    Attributes:
        op: ``create``, ``update`` or ``delete``.
        kind: ``function``, ``subscription``, ``eventtype`` or ``cors``.
        name: how a reader knows the resource (``async user.created POST /acme-crm/``).
        resource_id: the id in the API's URLs (function id, event type name, subscription
            id, CORS id); known for creates too, since the gateway derives ids from fields.
        body: the request body for a create or update, exactly as the API takes it.
        before: the resource as listed, for updates and deletes.
        detail: the rest of the :meth:`describe` line (what runs, what changes).

    .. versionadded:: 0.1.0
    """

    op: Op
    kind: Kind
    name: str
    resource_id: str
    body: Mapping[str, Any] | None = None
    before: Mapping[str, Any] | None = None
    detail: str = field(default="", compare=False)

    def describe(self) -> str:
        """One line for humans, e.g.
        ``~ function      addUserToCRM: provider.bundle 3f2a1c… → 9b0e4d…``."""
        return f"{_SIGNS[self.op]} {self.kind:<13} {self.name}{self.detail}"

    @property
    def verb(self) -> str:
        """``creating``, ``updating`` or ``deleting``: for messages about this action."""
        return _VERBS[self.op]


@dataclass(frozen=True)
class Plan:
    """The writes of a deploy or removal, in the order they must be applied.

    .. versionadded:: 0.1.0
    """

    actions: tuple[Action, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the gateway already matches: nothing to write."""
        return not self.actions

    def _ops(self) -> list[set[Op]]:
        by_resource: dict[tuple[str, str], set[Op]] = {}
        for action in self.actions:
            by_resource.setdefault((action.kind, action.resource_id), set()).add(action.op)
        return list(by_resource.values())

    @property
    def created(self) -> int:
        """Resources that will exist afterwards and do not now."""
        return sum(1 for ops in self._ops() if "create" in ops and "delete" not in ops)

    @property
    def removed(self) -> int:
        """Resources that exist now and will not afterwards."""
        return sum(1 for ops in self._ops() if "delete" in ops and "create" not in ops)

    @property
    def changed(self) -> int:
        """Resources that exist before and after but differ (updated or replaced)."""
        return len(self._ops()) - self.created - self.removed

    def describe(self) -> str:
        """One :meth:`Action.describe` line per action, newline-separated."""
        return "\n".join(action.describe() for action in self.actions)

    def summary(self) -> str:
        """``2 created, 1 changed, 0 removed``, or ``no changes``."""
        if self.empty:
            return "no changes"
        return f"{self.created} created, {self.changed} changed, {self.removed} removed"
