"""`eg emit`: send one event to the Events API, the way a service would."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import TYPE_CHECKING, Any, Final

import click

from eventgateway.cli.context import CliOptions, gateway_options

if TYPE_CHECKING:
    from eventgateway.sdk._wire import EmitResult

__all__ = ["emit", "read_data"]

_DATA_FORMS: Final = "pass JSON, @FILE to read a file, or - to read standard input"


def read_data(raw: str) -> Any:
    """The JSON value ``--data`` names: inline JSON, ``@FILE`` or ``-`` (standard input).

    Raises:
        click.BadParameter: the file cannot be read, or the text is not JSON (a usage
            error naming ``--data``, exit status 2, as for any other bad value).
    """
    if raw == "-":
        text, origin = sys.stdin.read(), "- (standard input) is not JSON"
    elif raw.startswith("@"):
        path = pathlib.Path(raw[1:])
        origin = f"{raw} is not JSON"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _bad_data(f"{raw}: no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _bad_data(f"{raw}: cannot read {path}: {exc}") from None
    else:
        text, origin = raw, "not JSON"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad_data(f"{origin} ({exc}): {_DATA_FORMS}") from None


def _bad_data(message: str) -> click.BadParameter:
    return click.BadParameter(
        message, click.get_current_context(silent=True), param_hint="'--data'"
    )


def _event_type(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter(
            "is empty: give the event type, e.g. --event user.created", ctx, param
        )
    return value


def _is_configuration_api(url: str) -> bool:
    """Whether ``url`` answers ``GET /v1/status`` with 200, as the Configuration API does.

    The Events API answers 202 to any request; there "v1" can be no space (names have 3
    or more characters), so asking emits nothing.
    """
    import httpx

    from eventgateway.sdk._wire import Target

    try:
        request = Target.of(url).request("GET", "/v1/status", {})
        with httpx.Client(timeout=5.0) as client:
            reply = client.get(request.url, headers=request.headers, extensions=request.extensions)
    except (httpx.HTTPError, ValueError):
        return False
    return reply.status_code == 200


@click.command()
@click.option(
    "--event",
    "event_type",
    required=True,
    metavar="TYPE",
    callback=_event_type,
    help="Event type.",
)
@click.option("--data", metavar="JSON|@FILE|-", help=f"The event's data: {_DATA_FORMS}.")
@click.option(
    "--path", metavar="PATH", help="Full path to emit to, e.g. /acme/users [default: /<space>]."
)
@click.option("--source", metavar="URI", help="The event's source [default: the SDK's].")
@click.option("--id", "event_id", metavar="ID", help="The event's id [default: a new UUID].")
@click.option("--binary", is_flag=True, help="Send in CloudEvents binary mode (ce-* headers).")
@click.option("--legacy", is_flag=True, help="Send in the original's legacy mode (Event header).")
@gateway_options(api="events")
def emit(
    *,
    options: CliOptions,
    event_type: str,
    data: str | None,
    path: str | None,
    source: str | None,
    event_id: str | None,
    binary: bool,
    legacy: bool,
) -> None:
    """Emit an event to the gateway, as a service would.

    For example: `eg emit --event user.created --data @event.json`. Subscribed async
    functions are called in the background: the gateway answers only that it accepted the
    event. When a sync subscription matches, its response is printed.
    """
    if binary and legacy:
        raise click.ClickException("--binary and --legacy exclude each other: choose one")
    payload = None if data is None else read_data(data)
    extra: dict[str, Any] = {}
    if source is not None:
        extra["source"] = source
    from eventgateway.sdk._wire import GatewayError

    with options.gateway() as gateway:
        try:
            result = gateway.emit(
                event_type,
                payload,
                id=event_id,
                path=path,
                mode="binary" if binary else "legacy" if legacy else "structured",
                **extra,
            )
        except GatewayError as exc:
            # Refused as the Configuration API refuses a path it does not know: ask it.
            if exc.status in (401, 403, 404, 405) and _is_configuration_api(options.url):
                raise click.ClickException(
                    f"{options.url} is the gateway's Configuration API (it answered "
                    f"{exc.status}: {exc.message.rstrip('.')}): --url (EG_URL, url in "
                    "serverless.yml) names the Events API, port 4000 by default"
                ) from exc
            raise
    _print_result(options, event_type, result)


def _print_result(options: CliOptions, event_type: str, result: EmitResult) -> None:
    if result.status == 202:
        if options.json:
            report = {"event": event_type, "status": 202, "duplicate": result.duplicate}
            click.echo(json.dumps(report))
            return
        click.echo(f"Event emitted: {event_type}")
        click.echo(
            "Run `eg logs -f <functionName>` to verify your subscribed function was triggered."
        )
        if result.duplicate:
            click.echo(
                "It was a duplicate (same source and id within the de-duplication window): "
                "accepted, but not delivered again."
            )
        return
    # A sync subscription answered: its response is the result.
    if options.json:
        click.echo(
            json.dumps(
                {"status": result.status, "headers": dict(result.headers), "body": _body(result)}
            )
        )
        return
    click.echo(f"Status: {result.status}")
    if result.text:
        click.echo(result.text)


def _body(result: EmitResult) -> Any:
    try:
        return result.json()
    except ValueError:  # not JSON: show the text
        return result.text
