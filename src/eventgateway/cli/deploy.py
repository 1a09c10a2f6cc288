"""`eg deploy`, `eg remove`, `eg info`: a ``serverless.yml`` service on a gateway.

``deploy`` packages the service directory, uploads the bundle when the gateway does not
have it yet, computes the plan against what the gateway holds for the service (found by
its ``metadata.service``/``metadata.stage``), prints it and applies it. Deploying again
without changes writes nothing and says so. When the gateway refuses a write midway, the
writes before it are rolled back and printed, and the command fails with the refusal.

Without a key for the space (flag, ``EG_API_KEY``, ``serverless.yml``, credentials file),
``deploy`` first claims the space and saves its key
(:func:`~eventgateway.cli.spaces.claim_if_free`); a space someone else holds fails with
one line saying so.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import click
from rich.console import Console

from eventgateway.cli.context import CliOptions, gateway_options
from eventgateway.cli.output import BestEffortOutput, echo_json, events_url
from eventgateway.errors import ConfigError

if TYPE_CHECKING:
    from eventgateway.cli.spaces import Claim
    from eventgateway.deploy.apply import DeployResult
    from eventgateway.deploy.model import ServiceSpec
    from eventgateway.deploy.package import Bundle
    from eventgateway.deploy.plan import Action, Plan
    from eventgateway.sdk._wire import GatewayError

__all__ = ["deploy", "info", "remove", "run_deploy"]


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} kB"
    return f"{count / (1024 * 1024):.1f} MB"


def _warn(service: ServiceSpec) -> None:
    for warning in service.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)


@contextlib.contextmanager
def _working(message: str, *, quiet: bool) -> Iterator[None]:
    """A spinner on a terminal while a long step runs; nothing when piped."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(message):
        yield


def _echo_action(out: BestEffortOutput, action: Action) -> None:
    colour = {"create": "green", "update": "yellow", "delete": "red"}.get(action.op)
    out.echo(f"  {action.describe()}", fg=colour)


def _rollback_echo(out: BestEffortOutput) -> Callable[[Action], None]:
    """Prints each write that undoes this deploy's, under a heading printed once."""
    started = False

    def echo(action: Action) -> None:
        nonlocal started
        if not started:
            out.echo("Rolling back what this deploy changed (a write was refused):")
            started = True
        _echo_action(out, action)

    return echo


def _summary(plan: Plan) -> str:
    return f"{plan.created} created, {plan.changed} changed, {plan.removed} removed"


def _where(options: CliOptions, service: ServiceSpec, preposition: str = "to") -> str:
    """``crm-service (stage dev) to space acme-crm at URL``: the Configuration API's URL,
    which the command talks to (derived from ``--url`` unless ``--config-url`` is given)."""
    from eventgateway.cli.credentials import config_base

    url = config_base(options.url, options.config_url, options.space)
    return (
        f"{service.name} (stage {service.stage}) {preposition} space {options.space} "
        f"at {url or options.config_url or options.url}"
    )


def _plan_json(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"op": action.op, "kind": action.kind, "name": action.name, "change": action.describe()}
        for action in plan.actions
    ]


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@gateway_options(service=True)
def deploy(*, options: CliOptions, service: ServiceSpec, dry_run: bool) -> None:
    """Deploy the service in this directory: package, upload, create/update/remove."""
    run_deploy(options, service, dry_run=dry_run)


def run_deploy(
    options: CliOptions, service: ServiceSpec, *, dry_run: bool = False, claim: bool = True
) -> None:
    """Package, upload, plan and apply ``service``, printing each step (or JSON at the end).

    With ``claim`` and no key for the space, the space is claimed first (not on a dry
    run); ``eg dev`` passes False, since its gateway runs open.

    Raises:
        ConfigError: the service cannot be packaged, a change was refused (the changes
            before it are rolled back and printed), the space is someone else's, or the
            key was refused.
        GatewayError: the gateway could not be reached.
    """
    from eventgateway.deploy.apply import deploy as deploy_service
    from eventgateway.deploy.handler_files import missing_handlers
    from eventgateway.deploy.package import build_bundle

    _warn(service)
    quiet = options.json
    # The plan is applied whole even when the reader of our output goes away (`| head`):
    # printing is best effort, and the command exits 141 once it is done.
    out = BestEffortOutput()
    if not quiet:
        verb = "Planning" if dry_run else "Deploying"
        out.echo(f"{verb} {_where(options, service)}")
    bundle = None
    if any(function.needs_bundle for function in service.functions):
        with _working("Packaging…", quiet=quiet):
            bundle = build_bundle(
                service.directory, service.package_patterns, config_file=service.source.name
            )
        for warning in (*bundle.warnings, *missing_handlers(service.functions, bundle.files)):
            click.secho(f"Warning: {warning}", fg="yellow", err=True)
        if not quiet:
            out.echo(
                f"Packaged {len(bundle.files)} files, {_size(bundle.size)} "
                f"(bundle {bundle.bundle_id[:12]})"
            )
    claimed: Claim | None = None
    if claim and not dry_run and not options.api_key:
        from eventgateway.cli.spaces import claim_if_free

        claimed = claim_if_free(options, quiet=quiet, say=out.echo)
        options = claimed.options
    would_claim = False
    try:
        with options.gateway() as gateway, _working("Deploying…", quiet=quiet):
            result = deploy_service(
                gateway,
                service,
                bundle=bundle,
                dry_run=dry_run,
                progress=None if quiet or dry_run else functools.partial(_echo_action, out),
                undone=None if quiet else _rollback_echo(out),
            )
    except ConfigError as exc:
        if not (claim and dry_run and _claim_first(options, exc)):
            refused = _refused(options, claimed, exc, service.source.name)
            if refused is None:
                raise
            raise refused from exc
        # No key, and the gateway wants one: a real deploy would claim the space first,
        # so plan against an empty space.
        result = _empty_space_plan(service, bundle)
        would_claim = True
        if not quiet:
            out.echo(
                f"Would claim space {options.space} first (no key for it; a deploy stops if "
                "someone else already holds it)"
            )
    if quiet:
        echo_json(
            {
                "service": service.name,
                "stage": service.stage,
                "space": options.space,
                "bundle": bundle.bundle_id if bundle else None,
                "uploaded": result.uploaded,
                "dryRun": dry_run,
                "claimed": claimed is not None and claimed.state == "claimed",
                "wouldClaim": would_claim,
                "actions": _plan_json(result.plan),
            }
        )
        return
    if bundle is not None:
        if result.uploaded:
            out.echo(f"Uploaded bundle {bundle.bundle_id[:12]} ({_size(bundle.size)})")
        elif not dry_run:
            out.echo(f"Bundle {bundle.bundle_id[:12]} is already on the gateway")
    plan = result.plan
    if plan.empty:
        out.echo(f"No changes: {service.name} (stage {service.stage}) is up to date.")
    elif dry_run:
        for action in plan.actions:
            _echo_action(out, action)
        out.echo(f"Would deploy {service.name}: {_summary(plan)} (dry run: nothing changed).")
    else:
        out.echo(f"Deployed {service.name}: {_summary(plan)}.", fg="green", bold=True)
    if not dry_run:
        _echo_endpoints(options, service, out)
    out.finish()


def _claim_first(options: CliOptions, exc: ConfigError) -> bool:
    """Whether ``exc`` is the gateway asking for the key that a claim would have given: no
    key was sent and the gateway answered 401 (the space may be unclaimed)."""
    cause = _gateway_error(exc)
    return not options.api_key and cause is not None and cause.status == 401


def _empty_space_plan(service: ServiceSpec, bundle: Bundle | None) -> DeployResult:
    """What a deploy to a space holding nothing would do."""
    from eventgateway.deploy.apply import DeployResult
    from eventgateway.deploy.plan import Current, make_plan

    bundle_id = None if bundle is None else bundle.bundle_id
    plan = make_plan(service, Current(), bundle_id=bundle_id)
    return DeployResult(plan, bundle_id, False, 0 if bundle is None else bundle.size)


_KEY_SOURCES: Final = {"flag": "--api-key or EG_API_KEY"}


def _refused(
    options: CliOptions, claimed: Claim | None, exc: ConfigError, service_file: str
) -> ConfigError | None:
    """When the gateway refused the key (or the lack of one) behind ``exc``: the error that
    says whose the space is, or which key failed (``service_file``: the file read), and
    what to do."""
    cause = _gateway_error(exc)
    if cause is None:
        return None
    if options.api_key and cause.status in (401, 403):
        source = _KEY_SOURCES.get(options.api_key_source or "", "")
        if options.api_key_source == "service":  # `accessKey` is apiKey's alias there
            source = f"custom.eventgateway.apiKey (or accessKey) in {service_file}"
        elif options.api_key_source == "credentials":
            from eventgateway.cli.credentials import credentials_path

            source = f"the credentials file {credentials_path()}"
        return ConfigError(
            f"the API key for space {options.space} was refused: {cause.message.rstrip('.')}"
            + (f" (the key came from {source})" if source else "")
        )
    if claimed is None or claimed.state != "taken" or options.api_key:
        return None
    if cause.status in (401, 403, 404):
        return claimed.taken_error()
    return None


def _gateway_error(exc: BaseException) -> GatewayError | None:
    """The gateway's answer behind ``exc`` (deploy wraps it in a ConfigError), if any."""
    from eventgateway.sdk._wire import GatewayError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, GatewayError):
        cause = cause.__cause__
    return cause


def _echo_endpoints(options: CliOptions, service: ServiceSpec, out: BestEffortOutput) -> None:
    sync = [item for item in service.subscriptions if item.type == "sync"]
    emits = sorted({item.path for item in service.subscriptions if item.type == "async"})
    if sync:
        out.echo("Endpoints:")
        for item in sync:
            url = events_url(options, item.path)
            out.echo(f"  {item.method:<7} {url} → {item.function_id}")
    if emits:
        urls = ", ".join(dict.fromkeys(events_url(options, path) for path in emits))
        out.echo(f"Events: emit to {urls}  (eg emit --event TYPE --data JSON)")


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@gateway_options(service=True)
def remove(*, options: CliOptions, service: ServiceSpec, dry_run: bool) -> None:
    """Remove everything the service in this directory deployed."""
    from eventgateway.deploy.apply import remove as remove_service

    _warn(service)
    quiet = options.json
    out = BestEffortOutput()  # as for deploy: the removal finishes whoever reads
    if not quiet:
        verb = "Planning the removal of" if dry_run else "Removing"
        out.echo(f"{verb} {_where(options, service, 'from')}")
    with options.gateway() as gateway, _working("Removing…", quiet=quiet):
        plan = remove_service(
            gateway,
            service,
            dry_run=dry_run,
            progress=None if quiet or dry_run else functools.partial(_echo_action, out),
        )
    if quiet:
        echo_json(
            {
                "service": service.name,
                "stage": service.stage,
                "dryRun": dry_run,
                "actions": _plan_json(plan),
            }
        )
    elif plan.empty:
        out.echo(f"Nothing to remove: {service.name} (stage {service.stage}) is not deployed.")
    elif dry_run:
        for action in plan.actions:
            _echo_action(out, action)
        out.echo(f"Would remove {plan.removed} resources of {service.name} (dry run).")
    else:
        out.echo(f"Removed {service.name}: {plan.removed} resources.", fg="green", bold=True)
    out.finish()


@click.command()
@gateway_options(service=True)
def info(*, options: CliOptions, service: ServiceSpec) -> None:
    """Show what the service in this directory has on the gateway, and its endpoints."""
    from eventgateway.cli.service_info import show_info

    _warn(service)
    with options.gateway() as gateway:
        show_info(options, service, gateway)
