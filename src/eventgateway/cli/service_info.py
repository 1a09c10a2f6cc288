"""`eg info`: a deployed service as the gateway holds it, with its URLs."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.table import Table

from eventgateway.cli.output import echo_json, events_url, function_target, print_table

if TYPE_CHECKING:
    from eventgateway.cli.context import CliOptions
    from eventgateway.deploy.model import ServiceSpec
    from eventgateway.sdk.sync import EventGateway

__all__ = ["show_info"]


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def show_info(options: CliOptions, service: ServiceSpec, gateway: EventGateway) -> None:
    """Print the service's functions, subscriptions, event types and endpoints."""
    metadata = service.metadata
    functions = gateway.list_functions(**metadata)
    subscriptions = gateway.list_subscriptions(**metadata)
    event_types = gateway.list_event_types(**metadata)
    cors = gateway.list_cors(**metadata)
    if options.json:
        echo_json(
            {
                "service": service.name,
                "stage": service.stage,
                "space": options.space,
                "url": options.url,
                "functions": functions,
                "subscriptions": subscriptions,
                "eventTypes": event_types,
                "cors": cors,
            }
        )
        return
    click.echo(f"service: {service.name}")
    click.echo(f"stage:   {service.stage}")
    click.echo(f"space:   {options.space}")
    click.echo(f"gateway: {options.url}")
    if not functions and not subscriptions:
        click.echo(f"Not deployed: run `{_deploy_command()}` in {_directory_name(service)}.")
        return
    _functions(functions)
    _subscriptions(subscriptions)
    if event_types:
        click.echo("event types: " + ", ".join(str(item.get("name")) for item in event_types))
    _endpoints(options, subscriptions)


def _deploy_command() -> str:
    """``eg deploy`` with the -s/--stage and --space flags this command was given (those
    from variables or serverless.yml apply to the deploy as well)."""
    ctx = click.get_current_context(silent=True)
    command = "eg deploy"
    if ctx is None:
        return command
    for name, flag in (("stage", "-s"), ("space", "--space")):
        value = ctx.params.get(name)
        if value and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            command += f" {flag} {value}"
    return command


def _directory_name(service: ServiceSpec) -> str:
    """``this directory`` for the working directory (``.``), else the path in quotes."""
    directory = service.directory
    if directory.resolve() == pathlib.Path.cwd().resolve():
        return "this directory"
    return f"'{directory}'"


def _functions(functions: list[dict[str, Any]]) -> None:
    table = _table("function", "type", "runs")
    for item in functions:
        provider = item.get("provider") or {}
        kind = str(provider.get("runtime") or item.get("type", ""))
        table.add_row(str(item.get("functionId")), kind, str(function_target(item) or ""))
    click.echo("")
    print_table(table)


def _subscriptions(subscriptions: list[dict[str, Any]]) -> None:
    if not subscriptions:
        return
    table = _table("type", "event type", "method", "path", "function")
    for item in subscriptions:
        table.add_row(
            *(str(item.get(name, "")) for name in ("type", "eventType", "method", "path")),
            str(item.get("functionId", "")),
        )
    click.echo("")
    print_table(table)


def _endpoints(options: CliOptions, subscriptions: list[dict[str, Any]]) -> None:
    sync = [item for item in subscriptions if item.get("type") == "sync"]
    if not sync:
        return
    click.echo("\nendpoints:")
    for item in sync:
        url = events_url(options, str(item.get("path", "")))
        click.echo(f"  {item.get('method', ''):<7} {url}")
