"""`eg invoke`: call a function once and show its result and log lines, as `sls invoke` does.

The result is printed as indented JSON, then a blank line and the invocation's log lines
exactly as `eg logs` prints them. A failed invocation prints ``errorType: errorMessage``
and the stack trace on standard error instead, and exits with status 1 (with
``--output json`` too, after printing the gateway's whole answer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import click

from eventgateway.cli.context import CliOptions, gateway_options
from eventgateway.cli.emit import read_data
from eventgateway.cli.logs import LogPrinter, chosen_function, function_name
from eventgateway.cli.service_functions import function_named

__all__ = ["ANSWER_WAIT_S", "error_lines", "invoke"]

# The gateway ends every invocation itself (a python/nodejs function at its timeout, at
# most 900 s, after at most 10 s of init; an http one at the gateway's function timeout),
# so wait for its answer rather than give up first.
ANSWER_WAIT_S: Final = 960.0


def error_lines(error: Mapping[str, Any] | None) -> list[str]:
    """A failed invocation's error as lines: ``errorType: errorMessage``, then the trace."""
    if error is None:
        return ["the invocation failed"]
    if "errorType" not in error:
        return [str(error.get("message") or "the invocation failed")]
    lines = [f"{error['errorType']}: {error.get('errorMessage', '')}"]
    for frame in error.get("stackTrace") or []:
        lines.extend(str(frame).rstrip("\n").splitlines())
    return lines


def _print_answer(answer: Mapping[str, Any], *, log: bool) -> None:
    result = answer.get("result")
    if answer.get("ok") or result is not None:  # a failed HTTP function's body is shown too
        click.echo(json.dumps(result, indent=4, ensure_ascii=False))
    if not answer.get("ok"):
        for line in error_lines(answer.get("error")):
            click.echo(line, err=True)
    lines: Sequence[Mapping[str, Any]] = answer.get("logs") or []
    if log and lines:
        click.echo()
        printer = LogPrinter(as_json=False)
        for entry in lines:
            printer.print(entry)


@click.command()
@function_name
@click.option(
    "--data",
    metavar="JSON|@FILE|-",
    help="The event's data: pass JSON, @FILE to read a file, or - to read standard input.",
)
@click.option(
    "--event",
    "event_type",
    metavar="TYPE",
    help="Event type [default: the function's first subscription's, else invoke].",
)
@click.option(
    "--log/--no-log",
    default=True,
    show_default=True,
    help="Print the invocation's log lines after the result.",
)
@gateway_options()
def invoke(
    *,
    options: CliOptions,
    name: str | None,
    function_option: str | None,
    data: str | None,
    event_type: str | None,
    log: bool,
) -> None:
    """Call a function once, now, and print its result and log lines.

    For example: `eg invoke -f addUserToCRM --data '{"username": "ada"}'` (or `eg invoke
    addUserToCRM …`); in a service directory, a key under `functions:` names the function
    it declares, whatever its `name:`. The function gets a CloudEvent carrying the data,
    directly: no subscription, queue or retry is involved. Exit status 1 when the
    invocation failed.
    """
    function = function_named(chosen_function(name, function_option))
    payload = None if data is None else read_data(data)
    with options.gateway() as gateway, function.explained(options.space):
        answer = gateway.invoke(
            function.function_id, payload, event=event_type, wait_s=ANSWER_WAIT_S
        )
    if options.json:
        click.echo(json.dumps(answer))
    else:
        _print_answer(answer, log=log)
    if not answer.get("ok"):
        raise click.exceptions.Exit(1)
