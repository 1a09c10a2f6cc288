"""How `eg` prints resources: rich tables on a terminal, plain aligned lines when piped, JSON."""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import click
from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from eventgateway.cli.context import CliOptions

__all__ = [
    "OUTPUT_CLOSED_STATUS",
    "BestEffortOutput",
    "Getter",
    "Item",
    "echo_json",
    "events_url",
    "function_target",
    "key",
    "print_table",
    "show_item",
    "show_list",
    "show_removed",
    "stdout_closed",
]

Item = Mapping[str, Any]
Getter = Callable[[Item], object]

# Wide enough that piped tables never wrap or cut an id; a terminal uses its own width.
_PIPE_WIDTH: Final = 10_000

OUTPUT_CLOSED_STATUS: Final = 141
"""The exit status of a command whose reader went away (``eg logs f | head -1``): 128 +
SIGPIPE, what a shell reports for any Unix tool stopped by a closed pipe."""

_silenced: list[bool] = []  # [True] once standard output points at os.devnull


def stdout_closed(exc: BaseException) -> bool:
    """Whether ``exc`` is a write to our standard output whose reader went away.

    If so, standard output now points at ``os.devnull`` (Python's recipe, "Note on
    SIGPIPE"): later writes, and the flush at exit, go nowhere instead of failing. A
    broken pipe while standard output is still read (a socket's, say) is not ours: False.
    """
    if not isinstance(exc, BrokenPipeError):
        return False
    if _silenced:
        return True
    if not _reader_gone():
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    _silenced.append(True)
    return True


def _reader_gone() -> bool:
    """Whether standard output is a pipe or socket nobody reads any more (POLLERR/POLLHUP
    on its write end); True where that cannot be asked (no poll)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced (a test's capture), or closed
        return False
    import select

    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


class BestEffortOutput:
    """Standard output a closed reader cannot interrupt, for work that must finish (a
    deploy's apply): once the reader is gone, lines are dropped and the work goes on;
    :meth:`finish` then ends the command with :data:`OUTPUT_CLOSED_STATUS`."""

    def __init__(self) -> None:
        self.closed = False

    def echo(self, message: str = "", **style: Any) -> None:
        """``click.secho(message, **style)``, unless the reader of standard output is gone."""
        if self.closed:
            return
        try:
            click.secho(message, **style)
        except BrokenPipeError as exc:
            if not stdout_closed(exc):
                raise
            self.closed = True

    def finish(self) -> None:
        """Raise :class:`BrokenPipeError` if the reader went away: the work is done, and
        the command ends as every other one whose output was cut short."""
        if self.closed:
            raise BrokenPipeError(errno.EPIPE, "standard output was closed")


def key(path: str) -> Getter:
    """Reads a dotted path (``metadata.service``) from an item; None when absent."""

    def get(item: Item) -> object:
        value: object = item
        for part in path.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def events_url(options: CliOptions, path: str) -> str:
    """The URL a client calls for the gateway path ``path`` (``/acme/users``).

    The gateway routes ``<space>.<domain>/x`` as ``/<space>/x``: for a hosted-style
    ``--url`` (``http://acme.localhost:4000``) the space is in the host, so it leaves the
    path (``http://acme.localhost:4000/users``).
    """
    from eventgateway.sdk._hosts import hosted_space, split_url

    base = options.url.rstrip("/")
    try:
        hosted = hosted_space(split_url(options.url)[1], options.space, None)
    except ValueError:  # a host naming another space: the URL as it is
        hosted = None
    prefix = f"/{hosted}"
    if hosted is not None and (path == prefix or path.startswith(prefix + "/")):
        return base + (path.removeprefix(prefix) or "/")
    return base + path


def function_target(item: Item) -> object:
    """What a function calls: the URL of an ``http`` one, the handler of a runtime one…"""
    provider = item.get("provider")
    if not isinstance(provider, Mapping):
        return None
    for name in ("url", "handler", "arn", "streamName", "deliveryStreamName", "queueUrl"):
        if provider.get(name):
            return provider[name]
    return next((value for value in provider.values() if isinstance(value, str)), None)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def print_table(table: Table) -> None:
    """Print ``table``: styled on a terminal; unwrapped, uncoloured lines when piped."""
    if sys.stdout.isatty():
        Console(highlight=False).print(table)
        return
    # Piped: no colour, no wrapping, no trailing blanks — lines that grep and cut can use.
    buffer = io.StringIO()
    Console(file=buffer, width=_PIPE_WIDTH, highlight=False, color_system=None).print(table)
    for line in buffer.getvalue().splitlines():
        click.echo(line.rstrip())


def echo_json(value: object) -> None:
    """Print ``value`` as indented JSON."""
    click.echo(json.dumps(value, indent=2))


def show_list(
    options: CliOptions, items: Sequence[Item], columns: Sequence[tuple[str, Getter]], noun: str
) -> None:
    """Items as a table of ``columns`` (title, getter), or as JSON."""
    if options.json:
        echo_json(list(items))
        return
    if not items:
        click.echo(f"No {noun} in space {options.space}.")
        return
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for title, _ in columns:
        table.add_column(title, overflow="fold")
    for item in items:
        table.add_row(*(_cell(get(item)) for _, get in columns))
    print_table(table)


def show_item(options: CliOptions, item: Item) -> None:
    """One item as a two-column table of its fields, or as JSON."""
    if options.json:
        echo_json(dict(item))
        return
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in item.items():
        table.add_row(name, _cell(value))
    print_table(table)


def show_removed(options: CliOptions, noun: str, ident: str) -> None:
    """Confirm a deletion, as a sentence or as JSON."""
    if options.json:
        click.echo(json.dumps({"removed": noun, "id": ident}))
    else:
        click.echo(f"Removed {noun} {ident}.")
