"""`eg serve` options for request limits, dispatch, TLS and the NATS prefix (out of ``main.py``)."""

from __future__ import annotations

import pathlib
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import click

from eventgateway.auth.ratelimit import RateLimit
from eventgateway.cpus import parse_cpus
from eventgateway.errors import ConfigError
from eventgateway.events.jsondepth import MAX_JSON_DEPTH_CEILING
from eventgateway.settings import Limits, Tls

__all__ = [
    "check_distinct_ports",
    "cpu_options",
    "dispatch_options",
    "durability_options",
    "nats_prefix_option",
    "port_options",
    "rate_limit_option",
    "request_limit_options",
    "store_url_with_prefix",
    "tls_from_flags",
    "tls_options",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_V = TypeVar("_V")
_DEFAULTS = Limits()
# The characters NATS stream, KV bucket and object store names share (the prefix starts
# each of them, and is a subject token too); the length keeps "KV_<prefix>-deadletters"
# and friends well inside the server's name limit.
_NATS_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")


def request_limit_options() -> Callable[[_F], _F]:
    """Add ``max_body_bytes``, ``max_header_bytes``, ``max_json_depth``,
    ``max_batch_events``, ``events_read_timeout_s`` and ``config_read_timeout_s`` (the
    ``Limits`` fields of the same names) to a command."""
    options = [
        click.option(
            "--max-body-bytes",
            type=click.IntRange(min=1),
            default=_DEFAULTS.max_body_bytes,
            show_default=True,
            envvar="EG_MAX_BODY_BYTES",
            help="Largest request body either API accepts (413 above it; bundle uploads "
            "have their own 50 MiB limit).",
        ),
        click.option(
            "--max-header-bytes",
            type=click.IntRange(min=1),
            default=_DEFAULTS.max_header_bytes,
            show_default=True,
            envvar="EG_MAX_HEADER_BYTES",
            help="Largest total size of a request's header names and values (431 above it).",
        ),
        click.option(
            "--max-json-depth",
            type=click.IntRange(min=1, max=MAX_JSON_DEPTH_CEILING),
            default=_DEFAULTS.max_json_depth,
            show_default=True,
            envvar="EG_MAX_JSON_DEPTH",
            help="Deepest nesting of arrays and objects in a JSON body (400 above it).",
        ),
        click.option(
            "--max-batch-events",
            type=click.IntRange(min=1),
            default=_DEFAULTS.max_batch_events,
            show_default=True,
            envvar="EG_MAX_BATCH_EVENTS",
            help="Most events in one application/cloudevents-batch+json request (413 above it).",
        ),
        click.option(
            "--events-read-timeout",
            "events_read_timeout_s",
            type=click.FloatRange(min=0, min_open=True),
            default=_DEFAULTS.events_read_timeout_s,
            show_default=True,
            envvar="EG_EVENTS_READ_TIMEOUT",
            help="Seconds the Events API allows from a request's first byte (or a new "
            "connection) until its body is read (408 and close after it).",
        ),
        click.option(
            "--config-read-timeout",
            "config_read_timeout_s",
            type=click.FloatRange(min=0, min_open=True),
            default=_DEFAULTS.config_read_timeout_s,
            show_default=True,
            envvar="EG_CONFIG_READ_TIMEOUT",
            help="The same for the Configuration API (long enough for a 50 MiB bundle "
            "upload on a slow link).",
        ),
    ]
    return _all(options)


def port_options(
    *, events_use: str = "", config_use: str = "", where: str = ""
) -> Callable[[_F], _F]:
    """``--events-port`` and ``--config-port`` (4000, 4001), as ``eg serve`` and ``eg dev``
    take them; ``events_use``/``config_use`` and ``where`` add to their help."""
    options: list[Callable[[_F], _F]] = [
        click.option(
            f"--{api}-port",
            type=int,
            default=default,
            show_default=True,
            envvar=f"EG_{api.upper()}_PORT",
            help=f"Port of the {name}{f' ({use})' if use else ''}{where}.",
        )
        for api, default, name, use in (
            ("events", 4000, "Events API", events_use),
            ("config", 4001, "Configuration API", config_use),
        )
    ]
    return _all(options)


def check_distinct_ports(events_port: int, config_port: int) -> None:
    """Refuse one port for both APIs (0, a free port each, is fine).

    Raises:
        click.UsageError: both are the same port.
    """
    if events_port == config_port and events_port != 0:
        raise click.UsageError(
            f"--events-port and --config-port are both {events_port}: the Events API and "
            "the Configuration API need a port each (by default 4000 and 4001)"
        )


def durability_options() -> Callable[[_F], _F]:
    """``eg serve``'s options for how long deliveries are leased, deduplicated and logged,
    and how SQLite commits them."""
    options: list[Callable[[_F], _F]] = [
        click.option(
            "--lease-timeout",
            "lease_s",
            type=float,
            default=60.0,
            show_default=True,
            envvar="EG_LEASE_TIMEOUT",
            help="Seconds before a dead process's delivery is retried (live ones renew leases).",
        ),
        click.option(
            "--dedup-window",
            "dedup_window_s",
            type=float,
            default=300.0,
            show_default=True,
            envvar="EG_DEDUP_WINDOW",
            help="Seconds in which a repeated (source, id) is not delivered again.",
        ),
        click.option(
            "--synchronous",
            type=click.Choice(["FULL", "NORMAL"]),
            default="FULL",
            show_default=True,
            envvar="EG_SYNCHRONOUS",
            help="SQLite durability: FULL survives power loss, NORMAL only process crashes.",
        ),
        click.option(
            "--retention-max-age",
            "retention_max_age_s",
            type=float,
            default=7 * 86_400.0,
            show_default=True,
            envvar="EG_RETENTION_MAX_AGE",
            help="Seconds the delivery log keeps settled events.",
        ),
        click.option(
            "--retention-max-events",
            type=click.IntRange(min=1),
            default=1_000_000,
            show_default=True,
            envvar="EG_RETENTION_MAX_EVENTS",
            help="Settled events the delivery log keeps at most.",
        ),
    ]
    return _all(options)


def dispatch_options() -> Callable[[_F], _F]:
    """Add ``dispatch_concurrency`` and ``per_subscription_concurrency`` to a command."""
    options = [
        click.option(
            "--dispatch-concurrency",
            type=click.IntRange(min=1),
            default=_DEFAULTS.dispatch_concurrency,
            show_default=True,
            envvar="EG_DISPATCH_CONCURRENCY",
            help="Async deliveries in flight at once, over all subscriptions.",
        ),
        click.option(
            "--per-subscription-concurrency",
            type=click.IntRange(min=1),
            default=_DEFAULTS.per_subscription_concurrency,
            show_default=True,
            envvar="EG_PER_SUBSCRIPTION_CONCURRENCY",
            help="Async deliveries in flight at once to one subscription (a slow or hung "
            "subscriber holds only these).",
        ),
    ]
    return _all(options)


def _parsed_by(
    parse: Callable[[str], _V], errors: tuple[type[Exception], ...]
) -> Callable[[click.Context, click.Parameter, str | None], _V | None]:
    """An option callback: ``parse(value)``, ``None`` when unset, and a usage error naming
    the option when ``parse`` raises one of ``errors``."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> _V | None:
        del ctx
        if value is None:
            return None
        try:
            return parse(value)
        except errors as exc:
            raise click.BadParameter(str(exc), param=param) from None

    return callback


rate_limit_option = _parsed_by(RateLimit.parse, (ConfigError,))
"""The callback of a ``RATE[/BURST]`` option: the parsed limit, or ``None``."""


def cpu_options() -> Callable[[_F], _F]:
    """Add ``server_cpus`` and ``worker_cpus`` (CPU sets or ``None``) to a command."""
    options = [
        click.option(
            "--server-cpus",
            metavar="LIST",
            callback=_parsed_by(parse_cpus, (ValueError,)),
            envvar="EG_SERVER_CPUS",
            help="Run the HTTP process on these CPUs only (e.g. 0, or 0-1) [default: any].",
        ),
        click.option(
            "--worker-cpus",
            metavar="LIST",
            callback=_parsed_by(parse_cpus, (ValueError,)),
            envvar="EG_WORKER_CPUS",
            help="Run the delivery worker on these CPUs only, also after a restart "
            "(e.g. 1) [default: any].",
        ),
    ]
    return _all(options)


def tls_options() -> Callable[[_F], _F]:
    """Add ``tls_cert`` and ``tls_key`` (paths or ``None``) to a command."""
    options = [
        click.option(
            "--tls-cert",
            type=click.Path(path_type=pathlib.Path),
            default=None,
            envvar="EG_TLS_CERT",
            help="PEM certificate chain: serve both APIs over HTTPS (with --tls-key).",
        ),
        click.option(
            "--tls-key",
            type=click.Path(path_type=pathlib.Path),
            default=None,
            envvar="EG_TLS_KEY",
            help="PEM private key of --tls-cert (unencrypted).",
        ),
    ]
    return _all(options)


def tls_from_flags(cert: pathlib.Path | None, key: pathlib.Path | None) -> Tls | None:
    """The ``Settings.tls`` for the two flags; the files are checked when the server starts.

    Raises:
        ConfigError: only one of the two was given.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise ConfigError(f"{given} needs {missing} too: HTTPS takes a certificate and its key")
    return Tls(cert_file=cert, key_file=key)


def nats_prefix_option() -> Callable[[_F], _F]:
    """Add ``nats_prefix`` (a string or ``None``) to a command."""
    return click.option(
        "--nats-prefix",
        default=None,
        metavar="NAME",
        envvar="EG_NATS_PREFIX",
        help="With a nats:// --store: the prefix of every stream, bucket and consumer name "
        "(the same as the URL's ?prefix=NAME; default eventgateway).",
    )


def store_url_with_prefix(store_url: str | None, nats_prefix: str | None) -> str | None:
    """``store_url`` with ``--nats-prefix`` put into its query as ``prefix=``.

    The URL stays the one place the prefix is read from, so every NATS user (config
    store, queue, logs, bundles) sees the same one.

    Raises:
        ConfigError: the prefix is not a valid name, the store is not ``nats://``, or the
            URL names another prefix.
    """
    if nats_prefix is None:
        return store_url
    if not _NATS_PREFIX.fullmatch(nats_prefix):
        raise ConfigError(
            f"--nats-prefix {nats_prefix!r} is not valid: use 1 to 64 letters, digits, '-' "
            "or '_' (it starts every NATS stream, bucket and consumer name)"
        )
    if store_url is None or not store_url.startswith("nats://"):
        shown = "the default SQLite store" if store_url is None else repr(store_url)
        raise ConfigError(
            f"--nats-prefix needs a nats:// store, not {shown}: use --store nats://HOST:4222"
        )
    _, _, query = store_url.partition("?")
    given = urllib.parse.parse_qs(query, keep_blank_values=True).get("prefix")
    if given is not None:
        if given[-1] != nats_prefix:
            raise ConfigError(
                f"--nats-prefix {nats_prefix!r} and the --store URL's prefix={given[-1]!r} "
                "differ: give the prefix once"
            )
        return store_url
    return f"{store_url}{'&' if query else '?'}prefix={nats_prefix}"


def _all(options: list[Callable[[_F], _F]]) -> Callable[[_F], _F]:
    def decorate(command: _F) -> _F:
        # Applied last-first, as if stacked in list order above the function.
        for option in reversed(options):
            command = option(command)
        return command

    return decorate
