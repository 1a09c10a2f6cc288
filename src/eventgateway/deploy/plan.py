"""What a deploy or a removal must change on the gateway: the :class:`Plan` (pure).

:func:`make_plan` compares a :class:`~eventgateway.deploy.model.ServiceSpec` with the
resources the gateway lists (:class:`Current`) and returns the writes that make them
equal, in an order the gateway accepts::

    + function      addUserToCRM (python3.11, handler.handler)
    + eventtype     user.created
    + subscription  async user.created POST /acme-crm/ → addUserToCRM

A service owns the resources whose metadata carries its ``service`` and ``stage``; only
those are ever changed or removed. Bodies are compared in the gateway's canonical form, so
deploying an unchanged service yields an empty plan. :mod:`eventgateway.deploy.apply`
performs the writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from eventgateway.deploy import plan_bodies as bodies
from eventgateway.deploy.model import ServiceSpec
from eventgateway.deploy.plan_bodies import Kind, Resource
from eventgateway.deploy.plan_types import Action, Current, Op, Plan
from eventgateway.errors import ConfigError, ValidationError

__all__ = ["Action", "Current", "Kind", "Op", "Plan", "make_plan", "remove_plan"]

# The order writes must reach the gateway in: what a resource refers to exists before
# it, and is removed after it. Functions go first: they refer to nothing, and they are
# the writes a gateway refuses most (no `node`, a missing bundle, a target URL it will
# not call), so a refused deploy usually fails before anything else was written and
# has less to roll back. Sync routes are cleared before new ones are added (same id, or
# paths that would conflict in the route tree); async subscriptions are removed only
# after their replacements exist, so no event falls between the two.
_STEPS: Final = (
    "function-write",
    "eventtype-create",
    "eventtype-update",
    "subscription-clear",
    "subscription-write",
    "cors",
    "subscription-delete",
    "eventtype-delete",
    "function-delete",
)


def _by(items: Iterable[Resource], key: str) -> dict[str, Resource]:
    return {str(item[key]): item for item in items}


def _by_name(
    subscriptions: Mapping[str, Resource], kept: Mapping[str, object]
) -> list[tuple[str, Resource]]:
    """The subscriptions not ``kept``, in the order a reader finds them in a plan."""
    left = [(sid, found) for sid, found in subscriptions.items() if sid not in kept]
    return sorted(left, key=lambda item: (bodies.subscription_name(item[1]), item[0]))


def _owner(resource: Resource) -> str:
    metadata = resource.get("metadata") or {}
    if "service" not in metadata:
        return "a resource that no service deployed (it has no service metadata)"
    stage = metadata.get("stage")
    return f"service {metadata['service']}" + (f" (stage {stage})" if stage else "")


class _Planner:
    """Collects the actions of one plan into the ordered steps of :data:`_STEPS`."""

    def __init__(self, service: ServiceSpec, current: Current) -> None:
        self.service = service
        self.current = current
        self.metadata = service.metadata
        self.space = service.gateway.space
        self.steps: dict[str, list[Action]] = {step: [] for step in _STEPS}
        self.own_functions = {str(f["functionId"]) for f in current.functions}
        self.other_functions = {str(f["functionId"]) for f in current.other_functions}

    def add(self, step: str, action: Action) -> None:
        self.steps[step].append(action)

    def plan(self) -> Plan:
        self._check_deletable()
        return Plan(tuple(action for step in _STEPS for action in self.steps[step]))

    @staticmethod
    def _checked(kind: Kind, body: Resource, label: str) -> dict[str, Any]:
        try:
            return bodies.canonical(kind, body)
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc.message}") from exc

    @staticmethod
    def _changes(kind: Kind, echo: Resource, body: Resource, label: str) -> tuple[str, ...]:
        try:
            return bodies.changes(kind, echo, body)
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc.message}") from exc

    def _write(
        self, step: str, kind: Kind, name: str, rid: str, body: Resource, echo: Resource | None
    ) -> None:
        """Create ``body``, or update ``echo`` to it when they differ."""
        label = f"{kind} {name}"
        if echo is None:
            self._checked(kind, body, label)
            self.add(step, Action("create", kind, name, rid, body))
            return
        diff = self._changes(kind, echo, body, label)
        if diff:
            detail = ": " + ", ".join(diff)
            self.add(step, Action("update", kind, name, rid, body, echo, detail))

    # -- functions ----------------------------------------------------------------------

    def functions(self, bundle_id: str | None) -> set[str]:
        own = _by(self.current.functions, "functionId")
        others = _by(self.current.other_functions, "functionId")
        desired: set[str] = set()
        for spec in self.service.functions:
            fid = spec.function_id
            if fid in desired:
                raise ConfigError(f"function {spec.key}: the id {fid!r} is used twice")
            desired.add(fid)
            if fid in others:
                raise ConfigError(self._taken(f"function {spec.key}", fid, others[fid]))
            body = bodies.function_body(spec, self.metadata, bundle_id)
            if fid in own:
                self._write("function-write", "function", fid, fid, body, own[fid])
                continue
            self._checked("function", body, f"function {spec.key}")
            detail = f" ({bodies.function_summary(body)})"
            self.add("function-write", Action("create", "function", fid, fid, body, None, detail))
        for fid in sorted(set(own) - desired):
            self.add("function-delete", Action("delete", "function", fid, fid, before=own[fid]))
        return desired

    def _taken(self, label: str, fid: str, found: Resource) -> str:
        if "service" in (found.get("metadata") or {}):
            fix = "remove it from that service (`eg remove` there)"
        else:
            fix = f"delete that function first (`eg functions rm {fid}`)"
        return (
            f"{label}: the function id {fid!r} in space {self.space!r} belongs to "
            f"{_owner(found)}. Give this function another id with `name:` in "
            f"serverless.yml, or {fix}."
        )

    # -- subscriptions ------------------------------------------------------------------

    def subscriptions(self) -> None:
        own = _by(self.current.subscriptions, "subscriptionId")
        others = _by(self.current.other_subscriptions, "subscriptionId")
        desired: dict[str, str] = {}
        for spec in self.service.subscriptions:
            body = bodies.subscription_body(spec, self.metadata)
            name = bodies.subscription_name(body)
            where = spec.where or f"subscription {name}"
            sid = str(self._checked("subscription", body, where)["subscriptionId"])
            if sid in desired:
                raise ConfigError(
                    f"{where}: {name} is declared twice (also at {desired[sid]}); a sync "
                    "route calls one function, an async one calls each function once"
                )
            desired[sid] = where
            detail = f" → {spec.function_id}"
            found = own.get(sid)
            if sid in others:
                if spec.type == "sync":
                    raise ConfigError(
                        f"{where}: a subscription for {name} already exists in another "
                        f"service: {_owner(others[sid])}. Change the path or method, or "
                        "remove it there."
                    )
                # An async id includes the function, which is this service's: adopt it.
                found = others[sid]
            if found is not None and found.get("functionId") != spec.function_id:
                # A sync id leaves the function out: same route, another function.
                self._delete_subscription("subscription-clear", sid, found)
                found = None
            if found is None:
                action = Action("create", "subscription", name, sid, body, None, detail)
                self.add("subscription-write", action)
                continue
            diff = self._changes("subscription", found, body, where)
            if diff:
                detail += ": " + ", ".join(diff)
                action = Action("update", "subscription", name, sid, body, found, detail)
                self.add("subscription-write", action)
        for sid, found in _by_name(own, desired):
            step = "subscription-clear" if found.get("type") == "sync" else "subscription-delete"
            self._delete_subscription(step, sid, found)

    def _delete_subscription(self, step: str, sid: str, found: Resource) -> None:
        name, detail = bodies.subscription_name(found), f" → {found.get('functionId')}"
        self.add(step, Action("delete", "subscription", name, sid, None, found, detail))

    # -- event types --------------------------------------------------------------------

    def _wanted_types(self) -> dict[str, str | None]:
        wanted: dict[str, str | None] = {}
        for spec in self.service.event_types:
            known = wanted.get(spec.name)
            if known is not None and spec.authorizer_id not in (None, known):
                raise ConfigError(
                    f"event type {spec.name} is declared with two authorizers: "
                    f"{known} and {spec.authorizer_id}"
                )
            wanted[spec.name] = known or spec.authorizer_id
        for subscription in self.service.subscriptions:
            wanted.setdefault(subscription.event_type, None)
        return wanted

    def event_types(self, desired_functions: set[str]) -> None:
        own = _by(self.current.event_types, "name")
        others = _by(self.current.other_event_types, "name")
        wanted = self._wanted_types()
        for name, authorizer in wanted.items():
            body = bodies.event_type_body(name, authorizer, self.metadata)
            if authorizer is not None and not (
                authorizer in desired_functions or authorizer in self.other_functions
            ):
                raise ConfigError(
                    f"event type {name}: its authorizer {authorizer!r} is neither a function "
                    f"of this service nor one in space {self.space!r}"
                )
            if name in own:
                self._write("eventtype-update", "eventtype", name, name, body, own[name])
            elif name in others:
                self._foreign_type(name, authorizer, body, others[name])
            else:
                # The authorizer exists by now: functions are written before event types.
                detail = f" (authorizer {authorizer})" if authorizer else ""
                self._checked("eventtype", body, f"event type {name}")
                action = Action("create", "eventtype", name, name, body, None, detail)
                self.add("eventtype-create", action)
        self._leftover_types(set(wanted), self.own_functions - desired_functions)

    def _foreign_type(
        self, name: str, authorizer: str | None, body: Resource, found: Resource
    ) -> None:
        """Use another owner's event type as it is, unless an authorizer must be set."""
        if authorizer is None or found.get("authorizerId") == authorizer:
            return
        if found.get("metadata"):
            raise ConfigError(
                f"event type {name} belongs to {_owner(found)}, so its authorizer is set "
                f"there (it is {found.get('authorizerId') or 'none'}, this service wants "
                f"{authorizer}). Remove `authorizer` here, or set it in that service."
            )
        self._write("eventtype-update", "eventtype", name, name, body, found)

    def _leftover_types(self, wanted: set[str], removed_functions: set[str]) -> None:
        """Delete this service's unwanted event types that no other subscription uses; a
        type kept for others loses an authorizer this plan deletes."""
        used = {str(s.get("eventType")) for s in self.current.other_subscriptions}
        for name, found in sorted(_by(self.current.event_types, "name").items()):
            if name in wanted:
                continue
            if name not in used:
                self.add("eventtype-delete", Action("delete", "eventtype", name, name, None, found))
            elif found.get("authorizerId") in removed_functions:
                body = bodies.event_type_body(name, None, found.get("metadata"))
                self._write("eventtype-update", "eventtype", name, name, body, found)

    # -- CORS ---------------------------------------------------------------------------

    def cors(self) -> None:
        own = _by(self.current.cors, "corsId")
        others = _by(self.current.other_cors, "corsId")
        desired: dict[str, dict[str, Any]] = {}
        for spec in self.service.subscriptions:
            if spec.cors is None:
                continue
            body = bodies.cors_body(spec, spec.cors, self.metadata)
            name = f"{spec.method} {spec.path}"
            label = f"{spec.where or 'subscription ' + name}: cors"
            stored = self._checked("cors", body, label)
            cid = str(stored["corsId"])
            if cid in desired:
                if bodies.canonical("cors", desired[cid]) != stored:
                    raise ConfigError(f"{label}: {name} is given two different CORS settings")
                continue
            desired[cid] = body
            if cid in others:
                raise ConfigError(
                    f"{label}: the CORS configuration of {name} belongs to "
                    f"{_owner(others[cid])}. Change the path or method, or remove it there."
                )
            self._write("cors", "cors", name, cid, body, own.get(cid))
        for cid in sorted(set(own) - set(desired)):
            self._delete_cors(cid, own[cid])

    def _delete_cors(self, cid: str, found: Resource) -> None:
        name = f"{found.get('method')} {found.get('path')}"
        self.add("cors", Action("delete", "cors", name, cid, None, found))

    # -- everything of the service ------------------------------------------------------

    def remove_all(self) -> None:
        for sid, found in _by_name(_by(self.current.subscriptions, "subscriptionId"), {}):
            self._delete_subscription("subscription-clear", sid, found)
        for cid, found in sorted(_by(self.current.cors, "corsId").items()):
            self._delete_cors(cid, found)
        self._leftover_types(set(), self.own_functions)
        for fid, found in sorted(_by(self.current.functions, "functionId").items()):
            self.add("function-delete", Action("delete", "function", fid, fid, before=found))

    def _check_deletable(self) -> None:
        """Refuse, before any write, to delete a function others still depend on."""
        deleted = {action.resource_id for action in self.steps["function-delete"]}
        for subscription in self.current.other_subscriptions:
            if subscription.get("functionId") in deleted:
                raise ConfigError(
                    f"function {subscription['functionId']} cannot be removed: "
                    f"subscription {bodies.subscription_name(subscription)} of "
                    f"{_owner(subscription)} still calls it. Remove that subscription first."
                )
        for event_type in self.current.other_event_types:
            if event_type.get("authorizerId") in deleted:
                raise ConfigError(
                    f"function {event_type['authorizerId']} cannot be removed: it authorizes "
                    f"event type {event_type['name']} of {_owner(event_type)}. Change that "
                    "event type's authorizer first."
                )


def make_plan(service: ServiceSpec, current: Current, *, bundle_id: str | None) -> Plan:
    """The writes that make the gateway hold exactly ``service``.

    Args:
        service: what the ``serverless.yml`` asks for.
        current: what the gateway lists now (:func:`eventgateway.deploy.apply.fetch_current`).
        bundle_id: the uploaded code bundle of the ``python``/``nodejs`` functions, or
            ``None`` when the service has none.

    Returns:
        The plan; empty when the gateway already matches ``service``.

    Raises:
        ConfigError: a function id or sync route of the service is taken by another owner,
            a body would be refused by the gateway, or removing a function would break
            another service; nothing has been written.

    .. versionadded:: 0.1.0
    """
    planner = _Planner(service, current)
    desired_functions = planner.functions(bundle_id)
    planner.subscriptions()
    planner.event_types(desired_functions)
    planner.cors()
    return planner.plan()


def remove_plan(service: ServiceSpec, current: Current) -> Plan:
    """The deletes that take everything of ``service`` off the gateway.

    Subscriptions and CORS configurations go first, then the service's event types that
    no other service's subscription uses (a kept one loses its authorizer if that is one
    of the service's functions), then the functions.

    Raises:
        ConfigError: another owner's subscription or event type still uses a function of
            the service; nothing has been written.

    .. versionadded:: 0.1.0
    """
    planner = _Planner(service, current)
    planner.remove_all()
    return planner.plan()
