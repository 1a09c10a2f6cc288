"""How `eg` prints resources: rich tables on a terminal, plain aligned lines when piped, JSON."""

from __future__ import annotations

import io
import json
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
    "Getter",
    "Item",
    "echo_json",
    "function_target",
    "key",
    "print_table",
    "show_item",
    "show_list",
    "show_removed",
]

Item = Mapping[str, Any]
Getter = Callable[[Item], object]

# Wide enough that piped tables never wrap or cut an id; a terminal uses its own width.
_PIPE_WIDTH: Final = 10_000


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
