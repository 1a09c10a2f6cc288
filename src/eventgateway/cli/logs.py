"""`eg logs`: a function's output, framed and formatted the way `sls logs` shows Lambda's.

System lines (``START``/``END``/``REPORT``, ``Task timed out…``) are printed as they are;
every other line as ``<YYYY-MM-DD HH:MM:SS.mmm (+00:00)>\\t<requestId>\\t<message>`` in
UTC. Colour only on a terminal: piped output is exactly these lines.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import click
from rich.console import Console
from rich.text import Text

from eventgateway.cli.context import CliOptions, gateway_options
from eventgateway.cli.credentials import config_base
from eventgateway.cli.option_checks import gateway_time
from eventgateway.cli.service_functions import function_named

if TYPE_CHECKING:
    from eventgateway.sdk.sync import EventGateway

__all__ = ["chosen_function", "format_line", "function_name", "logs"]

LogEntry = Mapping[str, Any]

_STYLES: Final = {"START": "cyan", "END": "cyan", "REPORT": "dim"}


def format_timestamp(timestamp: str) -> str:
    """``2026-11-26T18:20:07.365Z`` as ``2026-11-26 18:20:07.365 (+00:00)``."""
    try:
        moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp  # not RFC 3339: show it as the gateway sent it
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} (+00:00)"


def format_line(entry: LogEntry) -> str:
    """One log line as `eg logs` prints it (without colour)."""
    message = str(entry.get("message", ""))
    if entry.get("stream") == "system":
        return message
    stamp = format_timestamp(str(entry.get("timestamp", "")))
    return f"{stamp}\t{entry.get('requestId', '')}\t{message}"


class LogPrinter:
    """Prints entries as text (styled on a terminal) or as JSON lines; flushes each."""

    def __init__(self, *, as_json: bool) -> None:
        self._json = as_json
        self._console = Console(highlight=False) if sys.stdout.isatty() else None

    def print(self, entry: LogEntry) -> None:
        if self._json:
            click.echo(json.dumps(dict(entry)))
        elif self._console is None:
            click.echo(format_line(entry))
        else:
            self._console.print(self._styled(entry), soft_wrap=True)

    def _styled(self, entry: LogEntry) -> Text:
        message = str(entry.get("message", ""))
        if entry.get("stream") == "system":
            style = _STYLES.get(message.split(" ", 1)[0], "yellow")
            return Text(message, style=style)
        text = Text()
        text.append(format_timestamp(str(entry.get("timestamp", ""))), style="green")
        text.append("\t")
        text.append(str(entry.get("requestId", "")), style="dim")
        text.append("\t")
        text.append(message, style="red" if entry.get("stream") == "stderr" else "")
        return text


def function_name(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the function as ``[NAME]`` or ``-f/--function NAME``; resolve the two
    with :func:`chosen_function`."""
    command = click.option(
        "-f",
        "--function",
        "function_option",
        metavar="NAME",
        help="The function (or give it as NAME).",
    )(command)
    return click.argument("name", required=False, metavar="[NAME]")(command)


def chosen_function(name: str | None, function_option: str | None) -> str:
    """The function named by the ``NAME`` argument or ``-f/--function``.

    Raises:
        click.UsageError: neither was given, or both, naming different functions.
    """
    if name is not None and function_option is not None and name != function_option:
        raise click.UsageError(
            f"two functions given, {name!r} and -f {function_option!r}: give one, as NAME "
            "or as -f/--function NAME",
            click.get_current_context(silent=True),
        )
    chosen = function_option if function_option is not None else name
    if chosen is None:
        raise click.UsageError(
            "Missing the function: give its NAME, or -f/--function NAME.",
            click.get_current_context(silent=True),
        )
    return chosen


@click.command()
@function_name
@click.option("-t", "--tail", is_flag=True, help="Keep following new lines until Ctrl-C.")
@click.option(
    "--since",
    metavar="TIME",
    callback=gateway_time,
    help="Only lines since: 10m, 2h, 1d, RFC 3339 or Unix.",
)
@click.option("--filter", "filter_text", metavar="TEXT", help="Only lines containing TEXT.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="At most this many of the most recent lines.",
)
@gateway_options()
def logs(
    *,
    options: CliOptions,
    name: str | None,
    function_option: str | None,
    tail: bool,
    since: str | None,
    filter_text: str | None,
    limit: int,
) -> None:
    """Show a function's logs the way `sls logs` shows Lambda's.

    For example: `eg logs -f addUserToCRM -t` (or `eg logs addUserToCRM -t`); in a service
    directory, a key under `functions:` names the function it declares. START, the
    function's output as `time<TAB>requestId<TAB>message`, END and REPORT with the measured
    duration and memory.
    """
    function = function_named(chosen_function(name, function_option))
    function_id = function.function_id
    printer = LogPrinter(as_json=options.json)
    interrupts = _ctrl_c_exits_quietly() if tail else contextlib.nullcontext()
    with interrupts, options.gateway() as gateway:
        # An unknown function (never registered, no lines kept) is the gateway's 404:
        # `Function "x" not found.`, exit status 1, as for `eg invoke`.
        with function.explained(options.space):
            recent = gateway.logs(function_id, since=since, limit=limit, filter=filter_text)
        for entry in recent:
            printer.print(entry)
        if tail:
            # Follow from the last line shown, so nothing written meanwhile is missed; the
            # stream repeats the lines of that last millisecond: they are skipped.
            last = recent[-1]["timestamp"] if recent else since
            repeated = [entry for entry in recent if entry["timestamp"] == last]
            stream = gateway.tail_logs(function_id, since=last, filter=filter_text)
            _follow_until_closed(
                printer, stream, repeated, options, lambda: _why_ended(gateway, function_id)
            )


@contextlib.contextmanager
def _ctrl_c_exits_quietly() -> Iterator[None]:
    """Ctrl-C (SIGINT) ends a tail at once with exit status 0.

    A KeyboardInterrupt raised inside httpx's connection pool can leave its cleanup hung
    (seen once in ~25 runs of the tail test), and a tail has nothing to save: so the
    process just exits. Off the main thread (no signal handlers there) Ctrl-C stays as is.
    """
    if threading.current_thread() is not threading.main_thread():
        try:
            yield
        except KeyboardInterrupt:
            pass
        return
    previous = signal.signal(signal.SIGINT, _exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    try:
        sys.stdout.flush()
    except (OSError, RuntimeError, ValueError):  # mid-write, or a closed pipe: nothing to do
        pass
    os._exit(0)


def _why_ended(gateway: EventGateway, function_id: str) -> str | None:
    """Why a gateway that still answers ended a tail, if it says (one request)."""
    from eventgateway.sdk._wire import GatewayError

    try:
        if not gateway.status():
            return None  # stopped or restarting: the generic reason
        gateway.get_function(function_id)
    except GatewayError as exc:
        if exc.status in (401, 403):  # a deleted space's keys are gone with it
            return f"the space {gateway.space!r} was deleted, or this key was revoked"
        if exc.status == 404:
            return f"function {function_id!r} is gone from space {gateway.space!r}"
    return None


def _follow_until_closed(
    printer: LogPrinter,
    stream: Iterable[LogEntry],
    repeated: Sequence[LogEntry],
    options: CliOptions,
    why_ended: Callable[[], str | None] = lambda: None,
) -> None:
    """Follow ``stream`` to its end, which only the gateway brings (Ctrl-C exits at once).

    ``why_ended`` asks the gateway, once the stream ended cleanly, what ended it (a space
    deleted meanwhile ends its tails on every instance).

    Raises:
        click.ClickException: always: the gateway closed the stream, or went away.
    """
    from eventgateway.sdk._wire import GatewayError

    where = config_base(options.url, options.config_url, options.space) or options.url
    try:
        _follow(printer, stream, repeated)
    except GatewayError as exc:
        if exc.status is not None:
            raise
        raise click.ClickException(
            f"the log stream ended: the gateway at {where} went away ({exc.message})"
        ) from exc
    reason = why_ended()
    if reason is not None:
        raise click.ClickException(f"the log stream ended: {reason}")
    raise click.ClickException(
        f"the log stream ended: the gateway at {where} closed it (stopped or restarting)"
    )


def _follow(printer: LogPrinter, stream: Iterable[LogEntry], repeated: Sequence[LogEntry]) -> None:
    pending = list(repeated)
    for entry in stream:
        if pending:
            if dict(entry) == dict(pending[0]):
                pending.pop(0)
                continue
            pending = []
        printer.print(entry)
