"""Deploy and remove a service through the SDK: list, plan, upload, write.

:func:`deploy` is what ``eg deploy`` does after reading ``serverless.yml`` and building
the code bundle::

    current = fetch_current(gateway, service)         # 4 list requests
    plan = make_plan(service, current, bundle_id=…)    # pure; refuses conflicts
    upload the bundle unless the gateway has it
    apply_plan(gateway, plan)                          # one request per action

The plan is made before anything is written, so a conflict (a function id owned by
another service) fails the deploy with nothing changed. A write that fails midway leaves
the earlier ones in place; running the deploy again completes it, since the next plan
starts from what the gateway then holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eventgateway.deploy.model import ServiceSpec
from eventgateway.deploy.plan import Action, Current, Plan, make_plan, remove_plan
from eventgateway.deploy.plan_bodies import subscription_options
from eventgateway.errors import ConfigError
from eventgateway.sdk._wire import GatewayError

if TYPE_CHECKING:
    from eventgateway.sdk.sync import EventGateway

__all__ = [
    "BundleLike",
    "DeployResult",
    "Progress",
    "apply_plan",
    "deploy",
    "fetch_current",
    "remove",
]

logger = logging.getLogger(__name__)

Progress = Callable[[Action], None]
"""Called with each action once the gateway has accepted it."""

_SYNC_TAKEN = (
    "a subscription for that endpoint and method already exists in another service "
    "or space; change the path or method, or remove it there"
)


class BundleLike(Protocol):
    """What :func:`deploy` needs of :class:`eventgateway.deploy.package.Bundle`."""

    @property
    def data(self) -> bytes:
        """The zip file."""

    @property
    def bundle_id(self) -> str:
        """The sha256 of ``data`` in hex: the gateway's id for it."""

    @property
    def size(self) -> int:
        """``len(data)``."""


@dataclass
class DeployResult:
    """What :func:`deploy` did (or, with ``dry_run``, would do).

    Attributes:
        plan: the writes, in order; empty when the gateway already matched.
        bundle_id: the code bundle the runtime functions point at, if any.
        uploaded: whether the bundle was sent; ``False`` when the gateway already had it
            and on a dry run.
        bundle_bytes: the bundle's size (0 without one).

    .. versionadded:: 0.1.0
    """

    plan: Plan
    bundle_id: str | None
    uploaded: bool
    bundle_bytes: int


def fetch_current(gateway: EventGateway, service: ServiceSpec) -> Current:
    """List the space's resources and split them into the service's and the others'.

    Raises:
        ConfigError: the gateway could not be listed, with its message.

    .. versionadded:: 0.1.0
    """
    try:
        return Current.of_space(
            service.metadata,
            functions=gateway.list_functions(),
            subscriptions=gateway.list_subscriptions(),
            event_types=gateway.list_event_types(),
            cors=gateway.list_cors(),
        )
    except GatewayError as exc:
        raise ConfigError(f"listing what space {gateway.space!r} holds: {exc.message}") from exc


def _send(gateway: EventGateway, action: Action) -> None:
    body: dict[str, Any] = dict(action.body or {})
    rid = action.resource_id
    metadata = body.pop("metadata", None)
    if action.kind == "function":
        if action.op == "delete":
            gateway.delete_function(rid)
            return
        write = gateway.create_function if action.op == "create" else gateway.update_function
        fid, type_, provider = body.pop("functionId"), body.pop("type"), body.pop("provider")
        write(fid, type_, provider, metadata=metadata, **body)
    elif action.kind == "eventtype":
        if action.op == "delete":
            gateway.delete_event_type(rid)
            return
        write_type = (
            gateway.create_event_type if action.op == "create" else gateway.update_event_type
        )
        write_type(body["name"], authorizer_id=body.get("authorizerId"), metadata=metadata)
    elif action.kind == "subscription":
        if action.op == "delete":
            gateway.unsubscribe(rid)
        elif action.op == "update":
            gateway.update_subscription(rid, dict(action.body or {}))
        else:
            gateway.subscribe(
                body["eventType"],
                body["functionId"],
                type=body["type"],
                path=body["path"],
                method=body["method"],
                metadata=metadata,
                **subscription_options(body),
            )
    elif action.op == "delete":
        gateway.delete_cors(rid)
    elif action.op == "update":
        gateway.update_cors(rid, dict(action.body or {}))
    else:
        gateway.create_cors(
            body["method"],
            body["path"],
            allowed_origins=body.get("allowedOrigins"),
            allowed_methods=body.get("allowedMethods"),
            allowed_headers=body.get("allowedHeaders"),
            allow_credentials=body.get("allowCredentials"),
            metadata=metadata,
        )


def _failure(action: Action, exc: GatewayError) -> ConfigError:
    what = f"{action.verb} {action.kind} {action.name}"
    sync = action.kind == "subscription" and (action.body or {}).get("type") == "sync"
    if action.op == "create" and sync and exc.status == 409:
        return ConfigError(f"{what}: {_SYNC_TAKEN} ({exc.message})")
    return ConfigError(f"{what}: {exc.message}")


def apply_plan(gateway: EventGateway, plan: Plan, *, progress: Progress | None = None) -> None:
    """Perform ``plan``'s actions in order, stopping at the first refusal.

    A delete of something already gone counts as done, so a plan can be applied again
    after an interruption.

    Args:
        gateway: a client of the service's gateway and space.
        plan: from :func:`~eventgateway.deploy.plan.make_plan` or ``remove_plan``.
        progress: called with each action after the gateway accepted it.

    Raises:
        ConfigError: naming the action and quoting the gateway, e.g.
            ``creating subscription async user.created POST /acme-crm/: Function
            "x" not found.``; the actions before it stay applied.

    .. versionadded:: 0.1.0
    """
    for action in plan.actions:
        try:
            _send(gateway, action)
        except GatewayError as exc:
            if not (action.op == "delete" and exc.status == 404):
                raise _failure(action, exc) from exc
            logger.info("%s was already gone", action.describe())
        if progress is not None:
            progress(action)


def deploy(
    gateway: EventGateway,
    service: ServiceSpec,
    *,
    bundle: BundleLike | None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> DeployResult:
    """Make the gateway hold exactly ``service``: upload its code, then write the plan.

    Args:
        gateway: a client of the service's gateway and space.
        service: the resolved ``serverless.yml``.
        bundle: the zip of the service directory
            (:func:`eventgateway.deploy.package.build_bundle`), or ``None`` when no
            function runs uploaded code.
        dry_run: only list and plan; upload and write nothing.
        progress: called with each action once applied.

    Returns:
        The plan (applied unless ``dry_run``) and what happened to the bundle.

    Raises:
        ConfigError: a conflict found while planning (nothing written), or the gateway
            refused the upload or a write.

    .. versionadded:: 0.1.0
    """
    bundle_id = None if bundle is None else bundle.bundle_id
    plan = make_plan(service, fetch_current(gateway, service), bundle_id=bundle_id)
    uploaded = False
    if not dry_run:
        if bundle is not None:
            uploaded = _upload(gateway, bundle)
        apply_plan(gateway, plan, progress=progress)
    return DeployResult(plan, bundle_id, uploaded, 0 if bundle is None else bundle.size)


def _upload(gateway: EventGateway, bundle: BundleLike) -> bool:
    """Send ``bundle`` unless the gateway has it; whether it was sent."""
    try:
        # Checked even for an empty plan: a gateway whose data directory lost the file
        # would otherwise keep functions whose code is gone.
        if gateway.bundle_exists(bundle.bundle_id):
            return False
        reply = gateway.upload_bundle(bundle.data)
    except GatewayError as exc:
        raise ConfigError(
            f"uploading the code bundle ({bundle.size} bytes): {exc.message}"
        ) from exc
    if reply.get("bundleId") != bundle.bundle_id:
        raise ConfigError(
            f"uploading the code bundle: the gateway stored it as {reply.get('bundleId')!r}, "
            f"not {bundle.bundle_id!r}; the upload was altered on the way"
        )
    return True


def remove(
    gateway: EventGateway,
    service: ServiceSpec,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Plan:
    """Delete everything of ``service`` from the gateway (``eg remove``).

    Code bundles stay: they are shared by content and cost only disk.

    Raises:
        ConfigError: another service still uses one of its functions (nothing written),
            or the gateway refused a delete.

    .. versionadded:: 0.1.0
    """
    plan = remove_plan(service, fetch_current(gateway, service))
    if not dry_run:
        apply_plan(gateway, plan, progress=progress)
    return plan
