"""The ``eg`` command (alias ``eventgateway``).

The client commands (deploy, emit, spaces, …) load on first use: ``eg serve`` runs for
days, and their modules (rich, PyYAML, the deploy planner) would hold megabytes of its RSS.
"""

from __future__ import annotations

import importlib
import logging
import pathlib
import sys
from typing import Final

import click

from eventgateway.auth.ratelimit import RateLimit
from eventgateway.cli.auth_flags import (
    auth_options,
    aws_credentials_option,
    operator_key_from_env,
)
from eventgateway.cli.serve_options import (
    check_distinct_ports,
    cpu_options,
    dispatch_options,
    durability_options,
    nats_prefix_option,
    port_options,
    rate_limit_option,
    request_limit_options,
    store_url_with_prefix,
    tls_from_flags,
    tls_options,
)
from eventgateway.cli.targets import policy_from_flags, private_targets, target_options
from eventgateway.errors import ConfigError
from eventgateway.providers.targets import IPNetwork
from eventgateway.settings import Durability, Limits, Settings, default_data_dir

__all__ = ["LAZY_COMMANDS", "cli", "main"]

# Command name -> "module:attribute"; an attribute that is a tuple of commands (the resource
# groups) is searched by name.
LAZY_COMMANDS: Final = {
    "deploy": "eventgateway.cli.deploy:deploy",
    "remove": "eventgateway.cli.deploy:remove",
    "info": "eventgateway.cli.deploy:info",
    "dev": "eventgateway.cli.dev:dev",
    "emit": "eventgateway.cli.emit:emit",
    "invoke": "eventgateway.cli.invoke:invoke",
    "logs": "eventgateway.cli.logs:logs",
    "spaces": "eventgateway.cli.spaces:spaces",
    "keys": "eventgateway.cli.spaces:keys",
    **{
        name: "eventgateway.cli.resources:RESOURCE_GROUPS"
        for name in ("functions", "subscriptions", "event-types", "cors", "events", "dead-letters")
    },
}


def _load_command(name: str) -> click.Command:
    module_name, _, attribute = LAZY_COMMANDS[name].partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    commands = found if isinstance(found, tuple) else (found,)
    for command in commands:
        if isinstance(command, click.Command) and command.name == name:
            return command
    raise LookupError(f"{LAZY_COMMANDS[name]} has no command {name!r}")  # a bug in the table


class _LazyGroup(click.Group):
    """A group importing a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            self.add_command(_load_command(cmd_name))
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eventgateway", prog_name="eg")
def cli() -> None:
    """eventgateway: route events to functions, durably."""


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="EG_HOST",
    help="Address both APIs listen on.",
)
@port_options()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    envvar="EG_DATA_DIR",
    help="Where the embedded store keeps its files [default: ./.eventgateway].",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    envvar="EG_STORE",
    help=(
        "Store URL: sqlite:///PATH (default, under --data-dir), memory://, or "
        "nats://HOST:4222[,nats://HOST2:4222][?prefix=NAME] (cluster mode: configuration, "
        "deliveries, dead letters, the delivery log, function logs and bundles on NATS "
        "JetStream; see docs/cluster.md)."
    ),
)
@click.option(
    "--domain",
    default=None,
    envvar="EG_DOMAIN",
    help="Route requests for <space>.<domain> to /<space>/… (hosted style).",
)
@click.option(
    "--shutdown-timeout",
    "shutdown_timeout_s",
    type=float,
    default=10.0,
    show_default=True,
    envvar="EG_SHUTDOWN_TIMEOUT",
    help="Seconds to let in-flight deliveries finish on shutdown.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar="EG_LOG_LEVEL",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@durability_options()
@click.option(
    "--dispatch",
    type=click.Choice(["inline", "process", "worker"]),
    default="worker",
    show_default=True,
    envvar="EG_DISPATCH",
    help="worker: a worker process leases, calls, settles; process: it calls; inline: no worker",
)
@click.option(
    "--queue-max-deliveries",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    envvar="EG_QUEUE_MAX_DELIVERIES",
    help="Unsettled deliveries before the Events API answers 429.",
)
@click.option(
    "--queue-max-bytes",
    type=click.IntRange(min=1),
    default=1024 * 1024 * 1024,
    show_default=True,
    envvar="EG_QUEUE_MAX_BYTES",
    help="Bytes of stored unsettled events before the Events API answers 429.",
)
@click.option(
    "--rate-limit-space",
    metavar="RATE[/BURST]",
    callback=rate_limit_option,
    envvar="EG_RATE_LIMIT_SPACE",
    help="Events/s per space on the Events API, 0 = unlimited "
    "[default: 1000/2000 with auth, unlimited without].",
)
@click.option(
    "--rate-limit-key",
    metavar="RATE[/BURST]",
    callback=rate_limit_option,
    envvar="EG_RATE_LIMIT_KEY",
    help="Events/s per API key emitting into a private space, 0 = unlimited "
    "[default: 1000/2000 with auth].",
)
@click.option(
    "--max-functions-per-space",
    type=click.IntRange(min=0),
    default=1_000,
    show_default=True,
    envvar="EG_MAX_FUNCTIONS_PER_SPACE",
    help="Functions one space may register, 0 = unlimited.",
)
@click.option(
    "--max-subscriptions-per-space",
    type=click.IntRange(min=0),
    default=5_000,
    show_default=True,
    envvar="EG_MAX_SUBSCRIPTIONS_PER_SPACE",
    help="Subscriptions one space may create, 0 = unlimited.",
)
@click.option(
    "--max-event-types-per-space",
    type=click.IntRange(min=0),
    default=1_000,
    show_default=True,
    envvar="EG_MAX_EVENT_TYPES_PER_SPACE",
    help="Event types one space may register, 0 = unlimited.",
)
@click.option(
    "--max-cors-per-space",
    type=click.IntRange(min=0),
    default=1_000,
    show_default=True,
    envvar="EG_MAX_CORS_PER_SPACE",
    help="CORS configurations one space may create, 0 = unlimited.",
)
@click.option(
    "--max-keys-per-space",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    envvar="EG_MAX_KEYS_PER_SPACE",
    help="API keys one space may hold (expired ones count until revoked), 0 = unlimited.",
)
@request_limit_options()
@dispatch_options()
@cpu_options()
@tls_options()
@nats_prefix_option()
@target_options()
@auth_options()
@aws_credentials_option()
def serve(
    host: str,
    events_port: int,
    config_port: int,
    data_dir: pathlib.Path | None,
    store_url: str | None,
    domain: str | None,
    shutdown_timeout_s: float,
    log_level: str,
    lease_s: float,
    dedup_window_s: float,
    synchronous: str,
    dispatch: str,
    retention_max_age_s: float,
    retention_max_events: int,
    queue_max_deliveries: int,
    queue_max_bytes: int,
    rate_limit_space: RateLimit | None,
    rate_limit_key: RateLimit | None,
    max_functions_per_space: int,
    max_subscriptions_per_space: int,
    max_event_types_per_space: int,
    max_cors_per_space: int,
    max_keys_per_space: int,
    max_body_bytes: int,
    max_header_bytes: int,
    max_json_depth: int,
    max_batch_events: int,
    events_read_timeout_s: float,
    config_read_timeout_s: float,
    dispatch_concurrency: int,
    per_subscription_concurrency: int,
    server_cpus: frozenset[int] | None,
    worker_cpus: frozenset[int] | None,
    tls_cert: pathlib.Path | None,
    tls_key: pathlib.Path | None,
    nats_prefix: str | None,
    allow_private_targets: bool | None,
    allowed_targets: tuple[IPNetwork, ...],
    auth: bool,
    claim_policy: str,
    aws_default_credentials: bool | None,
) -> None:
    """Run the gateway: Events API and Configuration API in one process."""
    from eventgateway.serving import serve as run_server

    check_distinct_ports(events_port, config_port)

    settings = Settings(
        host=host,
        events_port=events_port,
        config_port=config_port,
        data_dir=data_dir or default_data_dir(),
        store_url=store_url_with_prefix(store_url, nats_prefix),
        domain=domain,
        shutdown_timeout_s=shutdown_timeout_s,
        log_level=log_level,
        dispatch=dispatch,
        server_cpus=server_cpus,
        worker_cpus=worker_cpus,
        durability=Durability(
            lease_s=lease_s,
            dedup_window_s=dedup_window_s,
            synchronous=synchronous,
            retention_max_age_s=retention_max_age_s,
            retention_max_events=retention_max_events,
        ),
        limits=Limits(
            queue_max_deliveries=queue_max_deliveries,
            queue_max_bytes=queue_max_bytes,
            rate_limit_space=rate_limit_space,
            rate_limit_key=rate_limit_key,
            max_functions_per_space=max_functions_per_space,
            max_subscriptions_per_space=max_subscriptions_per_space,
            max_event_types_per_space=max_event_types_per_space,
            max_cors_per_space=max_cors_per_space,
            max_keys_per_space=max_keys_per_space,
            max_body_bytes=max_body_bytes,
            max_header_bytes=max_header_bytes,
            max_json_depth=max_json_depth,
            max_batch_events=max_batch_events,
            events_read_timeout_s=events_read_timeout_s,
            config_read_timeout_s=config_read_timeout_s,
            dispatch_concurrency=dispatch_concurrency,
            per_subscription_concurrency=per_subscription_concurrency,
        ),
        tls=tls_from_flags(tls_cert, tls_key),
        private_targets=private_targets(allow_private_targets),
        allowed_targets=allowed_targets,
        aws_default_credentials=aws_default_credentials,
        auth=auth,
        claim_policy=claim_policy,
        operator_key=operator_key_from_env(),
    )
    _setup_logging(log_level)
    run_server(settings)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


@cli.command("_callworker", hidden=True)
@click.option("--socket", "socket_path", type=click.Path(path_type=pathlib.Path), required=True)
@click.option("--log-level", default="info")
@target_options(from_env=False)
def call_worker(
    socket_path: pathlib.Path,
    log_level: str,
    allow_private_targets: bool | None,
    allowed_targets: tuple[IPNetwork, ...],
) -> None:
    """Internal: the delivery worker process of `eg serve --dispatch process`.

    The gateway starts ``python -m eventgateway.call_worker`` instead (a leaner process);
    this command stays for people who ran the worker by hand.
    """
    from eventgateway.call_worker import serve_forever

    targets = policy_from_flags(allow_private_targets, allowed_targets)
    serve_forever(socket_path, targets=targets, log_level=log_level)


def main() -> None:
    """Entry point: run the CLI, turning known errors into one line and exit status 1."""
    try:
        # Without standalone mode click returns, not raises, a command's Exit(code).
        status = cli.main(standalone_mode=False, prog_name="eg")
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if isinstance(status, int) and status != 0:
        sys.exit(status)
