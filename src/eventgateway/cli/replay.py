"""`eg events replay`: deliver stored events again (docs/delivery.md, "Replay").

It follows `eg dead-letters redrive`: one selection, a one-line count (the gateway's
answer unchanged with ``-o json``), and exit status 1 with the gateway's message when it
refuses (404 ids that name no event, 429 no room; nothing is replayed then).
"""

from __future__ import annotations

import json
from typing import Any

import click

from eventgateway.cli.context import CliOptions, gateway_options
from eventgateway.cli.option_checks import gateway_time

__all__ = ["replay"]

_SELECTION = "name the events: EVENT_ID ..., or --since TIME (with --until TIME if you like)"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _report(options: CliOptions, answer: dict[str, Any]) -> None:
    if options.json:
        click.echo(json.dumps(answer))
        return
    replayed = _plural(answer.get("replayed", 0), "delivery", "deliveries")
    events = _plural(answer.get("events", 0), "event", "events")
    click.echo(f"Replayed {replayed} of {events}.")
    skipped = answer.get("skipped") or {}
    reasons = [
        f"{skipped[name]} to {what}"
        for name, what in (
            ("deletedSubscription", "subscriptions removed since"),
            ("atMostOnce", "at-most-once subscriptions"),
            ("filtered", "subscriptions whose filter does not match now"),
        )
        if skipped.get(name)
    ]
    if reasons:
        click.echo(f"Skipped {'; '.join(reasons)}.")


@click.command("replay")
@click.argument("event_ids", nargs=-1, metavar="[EVENT_ID]...")
@click.option(
    "--subscription",
    "subscription_id",
    metavar="ID",
    help="Only to this subscription (and only events delivered to it).",
)
@click.option(
    "--since",
    metavar="TIME",
    callback=gateway_time,
    help="Events received since: 10m, 2h, RFC 3339 or Unix.",
)
@click.option(
    "--until",
    metavar="TIME",
    callback=gateway_time,
    help="Events received before (the same forms).",
)
@gateway_options()
def replay(
    *,
    options: CliOptions,
    event_ids: tuple[str, ...],
    subscription_id: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Deliver events again, to the subscriptions they were delivered to.

    Name the events, or a window of the time they were received (--since is required
    for a window). Each gets a new delivery beside its old ones, from attempt 1, with
    the same CloudEvent (id included). Subscriptions removed since, at-most-once now,
    or whose filter now turns the event away, are skipped.
    """
    if event_ids and (since is not None or until is not None):
        raise click.ClickException(f"{_SELECTION} (only one of them)")
    if not event_ids and since is None:
        raise click.ClickException(_SELECTION + ("; --until needs --since" if until else ""))
    with options.gateway() as gateway:
        answer = gateway.replay(
            list(dict.fromkeys(event_ids)) or None,
            subscription_id=subscription_id,
            since=since,
            until=until,
        )
    _report(options, answer)
