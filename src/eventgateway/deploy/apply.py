"""Deploy and remove a service through the SDK: list, plan, upload, write.

:func:`deploy` is what ``eg deploy`` does after reading ``serverless.yml`` and building
the code bundle::

    current = fetch_current(gateway, service)         # 4 list requests
    plan = make_plan(service, current, bundle_id=…)    # pure; refuses conflicts
    upload the bundle unless the gateway has it
    apply_plan(gateway, plan, roll_back=True)          # one request per action

The plan is made before anything is written, so a conflict (a function id owned by
another service) fails the deploy with nothing changed. A write the gateway refuses
midway makes the deploy undo its earlier writes, newest first
(:mod:`eventgateway.deploy.rollback`), so the space is left as the deploy found it. A
removal is not rolled back: a delete that fails leaves the earlier ones done, and
running the removal again completes it, since the next plan starts from what the
gateway then holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from eventgateway.deploy import rollback
from eventgateway.deploy.model import ServiceSpec
from eventgateway.deploy.plan import Action, Current, Plan, make_plan, remove_plan
from eventgateway.deploy.writes import failure, send
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


def apply_plan(
    gateway: EventGateway,
    plan: Plan,
    *,
    progress: Progress | None = None,
    roll_back: bool = False,
    undone: Progress | None = None,
) -> None:
    """Perform ``plan``'s actions in order, stopping at the first refusal.

    A delete of something already gone counts as done, so a plan can be applied again
    after an interruption.

    Args:
        gateway: a client of the service's gateway and space.
        plan: from :func:`~eventgateway.deploy.plan.make_plan` or ``remove_plan``.
        progress: called with each action after the gateway accepted it.
        roll_back: on a refusal, undo the actions already applied, newest first
            (:mod:`eventgateway.deploy.rollback`); ``deploy`` does, ``remove`` does not.
        undone: with ``roll_back``, called with each undoing write once accepted.

    Raises:
        ConfigError: naming the action and quoting the gateway, e.g.
            ``creating subscription async user.created POST /acme-crm/: Function
            "x" not found.``; the actions before it stay applied unless ``roll_back``.
        DeployFailed: with ``roll_back``, when actions had been applied before the
            refusal: the refusal, then what was rolled back or left behind.

    .. versionadded:: 0.1.0
    """
    applied: list[Action] = []
    for action in plan.actions:
        try:
            send(gateway, action)
        except GatewayError as exc:
            if not (action.op == "delete" and exc.status == 404):
                if roll_back and applied:
                    # The refusal is the context, not the cause: the message quotes it
                    # already, and a caller walking the causes (the CLI's "cannot reach
                    # the gateway") must not replace the list of what was left behind.
                    raise _rolled_back(gateway, applied, action, exc, undone)  # noqa: B904
                raise failure(action, exc) from exc
            logger.info("%s was already gone", action.describe())
        else:
            applied.append(action)
        if progress is not None:
            progress(action)


def _rolled_back(
    gateway: EventGateway,
    applied: list[Action],
    refused: Action,
    exc: GatewayError,
    undone: Progress | None,
) -> rollback.DeployFailed:
    """Undo ``applied`` after ``refused`` failed with ``exc``; the error to raise."""
    error = failure(refused, exc)
    error.__cause__ = exc
    # Without an answer the refused write may have been made: it is undone too.
    unsure = refused if exc.status is None else None
    made, left = rollback.roll_back(gateway, applied, unsure=unsure, progress=undone)
    return rollback.DeployFailed(error, made, left, space=gateway.space)


def deploy(
    gateway: EventGateway,
    service: ServiceSpec,
    *,
    bundle: BundleLike | None,
    dry_run: bool = False,
    progress: Progress | None = None,
    undone: Progress | None = None,
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
        undone: called with each write that undoes an earlier one after a refusal.

    Returns:
        The plan (applied unless ``dry_run``) and what happened to the bundle.

    Raises:
        ConfigError: a conflict found while planning, or the gateway refused the upload
            or the first write; nothing has been written (an uploaded bundle stays).
        DeployFailed: the gateway refused a later write; the earlier ones were rolled
            back, newest first, and the error names any that could not be.

    .. versionadded:: 0.1.0
    """
    bundle_id = None if bundle is None else bundle.bundle_id
    plan = make_plan(service, fetch_current(gateway, service), bundle_id=bundle_id)
    uploaded = False
    if not dry_run:
        if bundle is not None:
            uploaded = _upload(gateway, bundle)
        apply_plan(gateway, plan, progress=progress, roll_back=True, undone=undone)
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
