"""What every client command of `eg` shares: where the gateway is, which space, how to print.

Each value comes from, in order: its flag, its ``EG_*`` variable, ``./serverless.yml``
(``custom.eventgateway.url``, ``.configurationUrl``, ``.space``, ``.apiKey`` or
``.accessKey``; read by :mod:`~eventgateway.cli.service_file`), the default; the API key
last from the credentials file (:mod:`~eventgateway.cli.credentials`), for the
Configuration API and space in use. :func:`resolve_options` is the one place this happens,
for every command.
:func:`gateway_options` adds the flags to a command and hands it one frozen
:class:`CliOptions`; it also turns any failure into one ``Error: …`` line with exit
status 1 (with the traceback first under ``--debug``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import pathlib
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import click

from eventgateway.cli.option_checks import http_url, space_name, url_and_space
from eventgateway.cli.service_file import DeclaredSettings, ServiceFile, Settings
from eventgateway.errors import ConfigError

if TYPE_CHECKING:
    from eventgateway.deploy.model import ServiceSpec
    from eventgateway.sdk.sync import EventGateway

__all__ = [
    "DEFAULT_URL",
    "SERVICE_FILE",
    "CliOptions",
    "KeySource",
    "ServiceFile",
    "error_message",
    "gateway_options",
    "load_service_file",
    "reporting_errors",
    "resolve_options",
    "with_saved_key",
]

DEFAULT_URL: Final = "http://localhost:4000"
DEFAULT_SPACE: Final = "default"
SERVICE_FILE: Final = "serverless.yml"
Output = Literal["table", "json"]
Api = Literal["events", "config"]
KeySource = Literal["flag", "service", "credentials"]

_HUNG_UP = ("disconnected without sending", "Connection reset by peer")


@dataclass(frozen=True, slots=True)
class CliOptions:
    """The resolved global options of one `eg` command."""

    url: str = DEFAULT_URL
    config_url: str | None = None
    space: str = DEFAULT_SPACE
    api_key: str | None = field(default=None, repr=False)  # a secret: never in a repr
    output: Output = "table"
    debug: bool = False
    api_key_source: KeySource | None = field(default=None, compare=False)
    """Where ``api_key`` came from: ``--api-key``/``EG_API_KEY``, ``serverless.yml``, or
    the credentials file."""
    space_given: bool = field(default=False, compare=False)
    """Whether something named ``space`` (a flag, variable, ``serverless.yml`` or the URL),
    rather than it being the default."""

    @property
    def json(self) -> bool:
        """Whether to print raw JSON instead of tables and sentences."""
        return self.output == "json"

    def gateway(self) -> EventGateway:
        """A client of the gateway these options name; close it (or use ``with``) when done."""
        from eventgateway.sdk.sync import EventGateway

        return EventGateway(
            url=self.url, config_url=self.config_url, space=self.space, api_key=self.api_key
        )


def resolve_options(
    *,
    url: str | None = None,
    config_url: str | None = None,
    space: str | None = None,
    api_key: str | None = None,
    output: Output = "table",
    debug: bool = False,
    service_file: Settings | None = None,
) -> CliOptions:
    """Options from values given as flags or ``EG_*`` variables (None: not given).

    What was not given comes from ``service_file`` (default: ``custom.eventgateway`` of
    ``./serverless.yml``), then the defaults; the key last from the credentials file. A
    setting of the file is read, and checked, only when no flag or variable gave it. Every
    command resolves its options here, ``eg deploy`` too (with the file it read whole).
    A URL whose path ends with the space (``http://localhost:4000/acme``) is the URL
    without it (:func:`~eventgateway.cli.option_checks.url_and_space`).

    Raises:
        ConfigError: a setting of the file is invalid (naming the file and line), or the
            credentials file cannot be read.
    """
    service = service_file or ServiceFile(pathlib.Path(SERVICE_FILE))
    key, source = _key_of(api_key, lambda: service.get("apiKey", "accessKey"))
    gateway_url, given_space = url_and_space(
        url or service.get("url") or DEFAULT_URL, space or service.get("space")
    )
    host_space = _space_of_host(gateway_url)
    if host_space is not None and given_space is not None and host_space != given_space:
        # Checked here, before any command runs (a deploy packaged its service first).
        raise click.UsageError(
            f"the URL {gateway_url} names the space {host_space!r} in its host (the "
            f"gateway routes it to /{host_space}/), but the space given is {given_space!r} "
            "(--space, EG_SPACE or custom.eventgateway.space): leave one of them out, or "
            "make them the same"
        )
    options = CliOptions(
        url=gateway_url,
        config_url=config_url or service.get("configurationUrl"),
        space=given_space or host_space or DEFAULT_SPACE,
        api_key=key,
        output=output,
        debug=debug,
        api_key_source=source,
        space_given=bool(given_space or host_space),
    )
    return with_saved_key(options)


def _space_of_host(url: str) -> str | None:
    # A hosted-style URL (http://acme.localhost:4000) names its space, as it does for the
    # SDK; None otherwise.
    from eventgateway.sdk._hosts import hosted_space, split_url

    try:
        return hosted_space(split_url(url)[1], None, None)
    except ValueError:  # the URL's own check reports it, with the option's name
        return None


def _key_of(
    flag: str | None, in_file: Callable[[], str | None]
) -> tuple[str | None, KeySource | None]:
    """The key of a flag, else of ``serverless.yml`` (read only then), and its source."""
    if flag:
        return flag, "flag"
    key = in_file()
    return (key, "service") if key else (None, None)


def with_saved_key(options: CliOptions) -> CliOptions:
    """``options`` with the credentials file's key for their gateway and space, when no
    other source gave a key.

    Raises:
        ConfigError: the credentials file exists but cannot be read.
    """
    if options.api_key:
        return options
    from eventgateway.cli.credentials import Credentials, config_base

    base = config_base(options.url, options.config_url, options.space)
    credentials = Credentials()
    saved = None if base is None else credentials.get(base, options.space)
    if saved is None:
        return options
    return dataclasses.replace(options, api_key=saved.api_key, api_key_source="credentials")


def error_message(exc: Exception, url: str, flag: str = "--url") -> str:
    """One line describing ``exc`` for a user whose command talked to ``url``.

    ``flag`` is the option that sets ``url``, named in the hint when nothing answered.
    """
    hint = f"start one with `eg serve`, or point {flag} at yours"
    from eventgateway.sdk._wire import GatewayError

    cause: BaseException | None = exc
    while isinstance(cause, ConfigError):  # a step that failed on the gateway says which
        cause = cause.__cause__
    if isinstance(cause, GatewayError) and cause.status is None:
        from eventgateway.cli.tls_hints import certificate_refused, untrusted_message

        untrusted = certificate_refused(cause)
        if untrusted is not None:  # something answered: `eg serve` would not help
            return untrusted_message(untrusted, url, flag)
        if url.startswith("http://") and any(m in cause.message for m in _HUNG_UP):
            # A listener that hung up on plain HTTP: most likely a TLS port (closing with
            # the request unread, it may reset the connection instead: seen under load).
            hint = f"if it serves HTTPS (eg serve --tls-cert), use https:// in {flag}"
        # Nothing answered (no HTTP status to show), whichever step asked first.
        return f"cannot reach the gateway at {url}: {cause.message}; {hint}"
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, ConnectionError):
        return f"cannot reach the gateway at {url}: {exc.strerror or exc}; {hint}"
    if isinstance(exc, GatewayError):
        return exc.message
    if isinstance(exc, ValueError):  # the SDK's word for a bad argument (URL, mode, id)
        return str(exc)
    return f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"


@contextlib.contextmanager
def reporting_errors(url: str, *, debug: bool, flag: str = "--url") -> Iterator[None]:
    """Turn any failure inside into a :class:`click.ClickException` (one line, exit 1).

    A write to standard output whose reader went away is no failure: the command stops
    printing and exits 141 (:data:`~eventgateway.cli.output.OUTPUT_CLOSED_STATUS`).
    """
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except Exception as exc:
        from eventgateway.cli.output import OUTPUT_CLOSED_STATUS, stdout_closed

        if stdout_closed(exc):  # our reader went away (`eg logs f | head -1`): stop quietly
            raise click.exceptions.Exit(OUTPUT_CLOSED_STATUS) from None
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        raise click.ClickException(" ".join(error_message(exc, url, flag).split())) from exc


_OPTIONS: Final = (
    click.option(
        "--url",
        envvar="EG_URL",
        metavar="URL",
        callback=http_url,
        help=f"Events API of the gateway [default: serverless.yml, else {DEFAULT_URL}].",
    ),
    click.option(
        "--config-url",
        envvar="EG_CONFIG_URL",
        metavar="URL",
        callback=http_url,
        help=(
            "Configuration API [default: serverless.yml's configurationUrl, else --url's "
            "scheme and host on port 4001]."
        ),
    ),
    click.option(
        "--space",
        envvar="EG_SPACE",
        callback=space_name,
        help=f"Space to work in [default: serverless.yml, else {DEFAULT_SPACE!r}].",
    ),
    click.option(
        "--api-key",
        envvar="EG_API_KEY",
        metavar="KEY",
        help="Key of the space [default: serverless.yml apiKey, else the credentials file].",
    ),
    click.option(
        "--output",
        "-o",
        envvar="EG_OUTPUT",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Human-readable tables, or raw JSON.",
    ),
    click.option("--debug", is_flag=True, envvar="EG_DEBUG", help="Show tracebacks of errors."),
)


def gateway_options(
    api: Api = "config", *, service: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add the global options to a command, which receives them as ``options``.

    ``api`` names the API the command talks to, for the message when it cannot be reached.
    With ``service``, the command works on a service: it also gets ``-c/--config`` and
    ``-s/--stage``, and receives the whole ``serverless.yml``, read and resolved, as
    ``service`` (a :class:`~eventgateway.deploy.model.ServiceSpec`); flags and ``EG_*``
    variables still win over the file's ``custom.eventgateway``.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def run(
            *args: Any,
            url: str | None,
            config_url: str | None,
            space: str | None,
            api_key: str | None,
            output: Output,
            debug: bool,
            **kwargs: Any,
        ) -> None:
            with reporting_errors(config_url or url or DEFAULT_URL, debug=debug):
                spec, path = None, None
                if service:
                    path = kwargs.pop("config_path")
                    spec = load_service_file(path, kwargs.pop("stage"))
                options = resolve_options(
                    url=url,
                    config_url=config_url,
                    space=space,
                    api_key=api_key,
                    output=output,
                    debug=debug,
                    service_file=None if spec is None else DeclaredSettings(spec.gateway, path),
                )
                if spec is not None:
                    kwargs["service"] = spec.with_space(options.space)
            url_used, flag = _url_of(options, api)
            with reporting_errors(url_used, debug=debug, flag=flag):
                command(*args, options=options, **kwargs)

        for option in reversed(_SERVICE_OPTIONS + _OPTIONS if service else _OPTIONS):
            run = option(run)
        return run

    return decorate


_SERVICE_OPTIONS: Final = (
    click.option(
        "--config",
        "-c",
        "config_path",
        default=SERVICE_FILE,
        show_default=True,
        type=click.Path(dir_okay=False, path_type=pathlib.Path),
        help="The service's serverless.yml.",
    ),
    click.option(
        "--stage",
        "-s",
        envvar="EG_STAGE",
        help="Stage of the service [default: provider.stage, else dev].",
    ),
)


def load_service_file(path: pathlib.Path, stage: str | None) -> ServiceSpec:
    """The service file of a service command, read whole and checked, as a deploy needs it."""
    from eventgateway.deploy.manifest import load_service

    return load_service(path, stage=stage, options={"stage": stage} if stage else {})


def _url_of(options: CliOptions, api: Api) -> tuple[str, str]:
    """The URL a command of ``api`` talks to (as the user wrote it), and the flag setting it."""
    if api == "events":
        return options.url, "--url"
    if options.config_url is not None:
        return options.config_url, "--config-url"
    from eventgateway.sdk._wire import Endpoints

    try:
        derived = Endpoints.derive(options.url, None, options.space).config.base
    except ValueError:  # a bad URL: the command itself will say so
        return options.url, "--url"
    return derived, "--url (or --config-url)"
