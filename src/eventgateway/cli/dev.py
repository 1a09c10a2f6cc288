"""`eg dev`: the one-command developer loop.

Starts a whole gateway in this process (embedded SQLite store under ``--data-dir``, open
on loopback), deploys the service in the current directory, follows the logs of all its
functions (each function in its own colour), and redeploys whenever a file of the service
changes. Ctrl-C stops everything.
"""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Final

import click

from eventgateway.cli.context import CliOptions, error_message, gateway_options
from eventgateway.cli.deploy import run_deploy
from eventgateway.cli.logs import format_line
from eventgateway.cli.output import stdout_closed
from eventgateway.cli.serve_options import check_distinct_ports, port_options
from eventgateway.errors import ConfigError

if TYPE_CHECKING:
    from eventgateway.deploy.model import ServiceSpec

__all__ = ["dev"]

_COLOURS: Final = ("cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta")
# Directories whose changes never mean "redeploy": caches, tools, the gateway's own data.
_IGNORED_DIRS: Final = frozenset(
    {
        ".eventgateway",
        ".git",
        ".serverless",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".venv",
        "venv",
        ".cache",
    }
)


class _Printer:
    """Prints lines from several threads without interleaving them.

    Once the reader of standard output is gone (``eg dev | head``), ``closed`` is set and
    the loop is stopped as by Ctrl-C, whichever thread found out: a log line may be the
    first thing printed after the reader left, and the loop would otherwise go on
    deploying for nobody until the next save.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.closed = False

    def echo(self, text: str, **style: object) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                click.secho(text, **style)  # type: ignore[arg-type]
            except BrokenPipeError as exc:
                if not stdout_closed(exc):
                    raise
                self.closed = True
        if self.closed:
            os.kill(os.getpid(), signal.SIGTERM)  # _stop_on_sigterm: KeyboardInterrupt


def _relevant(directory: pathlib.Path, data_dir: pathlib.Path) -> Callable[[object, str], bool]:
    data_dir = data_dir.resolve()

    def keep(change: object, path: str) -> bool:
        del change
        resolved = pathlib.Path(path).resolve()
        if resolved.is_relative_to(data_dir):
            return False
        try:
            parts = resolved.relative_to(directory.resolve()).parts
        except ValueError:
            return False
        return not any(part in _IGNORED_DIRS for part in parts) and not path.endswith(".pyc")

    return keep


class _LogFollower:
    """One thread per function, following its logs over the gateway's SSE stream."""

    def __init__(self, options: CliOptions, printer: _Printer, since_s: float) -> None:
        self._options = options
        self._printer = printer
        self._since_s = since_s
        self._following: dict[str, threading.Thread] = {}
        self._width = 0

    def follow(self, function_ids: list[str]) -> None:
        self._width = max([self._width, *(len(name) for name in function_ids)])
        for function_id in function_ids:
            thread = self._following.get(function_id)
            if thread is not None and thread.is_alive():
                continue
            colour = _COLOURS[len(self._following) % len(_COLOURS)]
            thread = threading.Thread(
                target=self._run,
                args=(function_id, colour),
                daemon=True,
                name=f"logs-{function_id}",
            )
            self._following[function_id] = thread
            thread.start()

    def _run(self, function_id: str, colour: str) -> None:
        try:
            with self._options.gateway() as gateway:
                for entry in gateway.tail_logs(function_id, since=self._since_s):
                    prefix = click.style(f"{function_id:<{self._width}} │", fg=colour)
                    for line in format_line(entry).split("\n"):
                        self._printer.echo(f"{prefix} {line}")
        except Exception as exc:  # a deleted function ends its stream; nothing to report
            if self._options.debug:
                self._printer.echo(f"{function_id}: log stream ended: {exc}", fg="bright_black")


def _reload(options: CliOptions, service_file: pathlib.Path, stage: str | None) -> ServiceSpec:
    from eventgateway.deploy.manifest import load_service

    service = load_service(service_file, stage=stage, options={"stage": stage} if stage else {})
    return service.with_space(options.space)


@click.command()
@port_options(
    events_use="emits and sync endpoints",
    config_use="deploys, logs, invoke",
    where=", on 127.0.0.1",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    envvar="EG_DATA_DIR",
    help="Where the gateway keeps its files [default: ./.eventgateway].",
)
@click.option("--no-watch", is_flag=True, help="Deploy once; do not redeploy on changes.")
@gateway_options(service=True)
def dev(
    *,
    options: CliOptions,
    service: ServiceSpec,
    events_port: int,
    config_port: int,
    data_dir: pathlib.Path | None,
    no_watch: bool,
) -> None:
    """Run a gateway here, deploy this service, follow its logs, redeploy on changes."""
    from eventgateway.embedded import EmbeddedGateway
    from eventgateway.settings import Settings, default_data_dir

    check_distinct_ports(events_port, config_port)
    data_dir = data_dir or default_data_dir()
    settings = Settings(
        host="127.0.0.1",
        events_port=events_port,
        config_port=config_port,
        data_dir=data_dir,
        dispatch="inline",
        log_level="warning",
    )
    printer = _Printer()
    _stop_on_sigterm()
    printer.echo(f"eg dev: {service.name} (stage {service.stage}) in space {options.space}")
    gateway = EmbeddedGateway(settings)
    try:
        gateway.start()
    except ConfigError as exc:
        raise _CannotStart(str(exc)) from exc
    try:
        local = CliOptions(
            url=gateway.events_url,
            config_url=gateway.config_url,
            space=options.space,
            api_key=options.api_key,
            output="table",
            debug=options.debug,
        )
        printer.echo(
            f"Gateway: Events API {gateway.events_url}, Configuration API "
            f"{gateway.config_url}; data in {data_dir}"
        )
        _loop(local, service, printer, data_dir=data_dir, watch=not no_watch)
    finally:
        gateway.stop()


class _CannotStart(click.ClickException):
    """A port taken, the data dir in use: exit status 2, as `eg serve` says it."""

    exit_code = 2


def _stop_on_sigterm() -> None:
    """SIGTERM ends `eg dev` as Ctrl-C does: the gateway drains and closes its store."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _loop(
    options: CliOptions,
    service: ServiceSpec,
    printer: _Printer,
    *,
    data_dir: pathlib.Path,
    watch: bool,
) -> None:
    follower = _LogFollower(options, printer, since_s=time.time())
    stage = service.stage
    try:
        _redeploy(options, service, printer, follower, first=True)
        if not watch:
            printer.echo("Following the logs; Ctrl-C to stop.")
            threading.Event().wait()
        import watchfiles

        directory = service.directory.resolve()
        printer.echo(f"Watching {directory} for changes; Ctrl-C to stop.")
        for changes in watchfiles.watch(directory, watch_filter=_relevant(directory, data_dir)):
            # Editors' temporary files come and go within one batch: name what is left.
            names = sorted({pathlib.Path(path).name for _, path in changes if os.path.exists(path)})
            printer.echo(
                f"Changed: {', '.join(names) or 'files removed'}; redeploying", fg="bright_black"
            )
            service = _redeploy(options, service, printer, follower, stage=stage)
    except KeyboardInterrupt:
        printer.echo("\nStopping.")
    if printer.closed:  # the command ends as every other one whose reader went away
        raise BrokenPipeError(errno.EPIPE, "standard output was closed")


def _redeploy(
    options: CliOptions,
    service: ServiceSpec,
    printer: _Printer,
    follower: _LogFollower,
    *,
    first: bool = False,
    stage: str | None = None,
) -> ServiceSpec:
    """Deploy (re-reading serverless.yml unless ``first``); errors are printed, not raised.

    The loop stays alive through a broken file or a refused change: the next save may fix it.
    """
    try:
        if not first:
            service = _reload(options, service.source, stage)
        run_deploy(options, service, claim=False)  # the embedded gateway runs open
    except Exception as exc:
        if stdout_closed(exc):  # the deploy's own output found the reader gone
            printer.closed = True
            raise KeyboardInterrupt from None
        message = error_message(exc, options.config_url or options.url)
        printer.echo(f"Error: {message}", fg="red")
        return service
    follower.follow([function.function_id for function in service.functions])
    return service
