"""`eg functions|subscriptions|event-types|cors|events|dead-letters`: look at and tidy a space.

``--output table`` (the default) prints the useful columns with rich; ``--output json``
prints what the Configuration API answered, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import click

from eventgateway.cli.context import CliOptions, gateway_options
from eventgateway.cli.output import (
    Getter,
    Item,
    function_target,
    key,
    show_item,
    show_list,
    show_removed,
)
from eventgateway.cli.replay import replay as replay_events

if TYPE_CHECKING:
    from eventgateway.sdk.sync import EventGateway

__all__ = ["RESOURCE_GROUPS"]


def _metadata(pairs: Sequence[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.ClickException(f"--metadata {pair!r} is not KEY=VALUE")
        metadata[name] = value
    return metadata


_metadata_option: Final = click.option(
    "--metadata",
    "-m",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only those whose metadata has KEY=VALUE (repeatable).",
)


@dataclass(frozen=True)
class Kind:
    """One kind of configuration entity and how the SDK reaches it."""

    command: str
    noun: str  # singular, for "Removed function x."
    plural: str
    id_name: str
    columns: Sequence[tuple[str, Getter]]
    list_items: Callable[[EventGateway, dict[str, str]], Sequence[Item]]
    get_item: Callable[[EventGateway, str], Item] | None
    delete_item: Callable[[EventGateway, str], object]


def _config_group(kind: Kind) -> click.Group:
    group = click.Group(kind.command, help=f"List, show and remove {kind.plural}.")

    @group.command("ls")
    @_metadata_option
    @gateway_options()
    def ls(*, options: CliOptions, metadata: tuple[str, ...]) -> None:
        with options.gateway() as gateway:
            items = kind.list_items(gateway, _metadata(metadata))
        show_list(options, items, kind.columns, kind.plural)

    ls.help = f"List the {kind.plural} of the space."

    if kind.get_item is not None:
        get_item = kind.get_item

        @group.command("get")
        @click.argument("ident", metavar=kind.id_name.upper())
        @gateway_options()
        def get(*, options: CliOptions, ident: str) -> None:
            with options.gateway() as gateway:
                item = get_item(gateway, ident)
            show_item(options, item)

        get.help = f"Show one {kind.noun}."

    @group.command("rm")
    @click.argument("ident", metavar=kind.id_name.upper())
    @gateway_options()
    def rm(*, options: CliOptions, ident: str) -> None:
        with options.gateway() as gateway:
            kind.delete_item(gateway, ident)
        show_removed(options, kind.noun, ident)

    rm.help = f"Remove one {kind.noun}."
    return group


KINDS: Final = (
    Kind(
        command="functions",
        noun="function",
        plural="functions",
        id_name="functionId",
        columns=(
            ("functionId", key("functionId")),
            ("type", key("type")),
            ("target", function_target),
            ("service", key("metadata.service")),
        ),
        list_items=lambda gateway, metadata: gateway.list_functions(**metadata),
        get_item=lambda gateway, ident: gateway.get_function(ident),
        delete_item=lambda gateway, ident: gateway.delete_function(ident),
    ),
    Kind(
        command="subscriptions",
        noun="subscription",
        plural="subscriptions",
        id_name="subscriptionId",
        columns=tuple(
            (name, key(name))
            for name in ("subscriptionId", "type", "eventType", "method", "path", "functionId")
        ),
        list_items=lambda gateway, metadata: gateway.list_subscriptions(**metadata),
        get_item=lambda gateway, ident: gateway.get_subscription(ident),
        delete_item=lambda gateway, ident: gateway.unsubscribe(ident),
    ),
    Kind(
        command="event-types",
        noun="event type",
        plural="event types",
        id_name="name",
        columns=(("name", key("name")), ("authorizerId", key("authorizerId"))),
        list_items=lambda gateway, metadata: gateway.list_event_types(**metadata),
        get_item=lambda gateway, ident: gateway.get_event_type(ident),
        delete_item=lambda gateway, ident: gateway.delete_event_type(ident),
    ),
    Kind(
        command="cors",
        noun="CORS configuration",
        plural="CORS configurations",
        id_name="corsId",
        columns=tuple(
            (name, key(name))
            for name in ("corsId", "method", "path", "allowedOrigins", "allowedMethods")
        ),
        list_items=lambda gateway, metadata: gateway.list_cors(**metadata),
        get_item=None,
        delete_item=lambda gateway, ident: gateway.delete_cors(ident),
    ),
)


_EVENT_COLUMNS: Final = tuple(
    (name, key(name)) for name in ("id", "type", "state", "deliveries", "receivedAt")
)
_DELIVERY_COLUMNS: Final = (
    *(
        (name, key(name))
        for name in ("deliveryId", "subscriptionId", "functionId", "state", "attempts")
    ),
    ("lastStatus", key("lastStatus")),
    ("error", lambda item: item.get("deadReason") or item.get("lastError")),
    ("replayOf", key("replayOf")),
)


def _duration_ms(item: Item) -> object:
    """``durationMs`` to two decimals, as the REPORT lines of `eg logs` show durations."""
    value = item.get("durationMs")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}"
    return value


_ATTEMPT_COLUMNS: Final = (
    *((name, key(name)) for name in ("deliveryId", "attempt", "startedAt")),
    ("durationMs", _duration_ms),
    *((name, key(name)) for name in ("outcome", "status", "error")),
)
_DEAD_LETTER_COLUMNS: Final = tuple(
    (name, key(name))
    for name in ("deadLetterId", "eventId", "subscriptionId", "attempts", "lastStatus", "reason")
)


@click.group("events")
def events() -> None:
    """Show accepted events and their deliveries, and replay them.

    The delivery log: every attempt of every delivery, and the state it left.
    """


events.add_command(replay_events)


@events.command("ls")
@click.option(
    "--state", type=click.Choice(["pending", "retrying", "delivered", "dead"]), help="Only these."
)
@click.option("--subscription", "subscription_id", metavar="ID", help="Only deliveries to it.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@gateway_options()
def list_events(
    *, options: CliOptions, state: str | None, subscription_id: str | None, limit: int
) -> None:
    """List recent events of the space, newest first."""
    with options.gateway() as gateway:
        items = gateway.list_events(state=state, subscription_id=subscription_id, limit=limit)
    show_list(options, items, _EVENT_COLUMNS, "events")


@events.command("get")
@click.argument("event_id", metavar="ID")
@gateway_options()
def get_event(*, options: CliOptions, event_id: str) -> None:
    """Show one event with every delivery and its attempts."""
    with options.gateway() as gateway:
        item = gateway.get_event(event_id)
    if options.json:
        show_item(options, item)
        return
    show_item(options, {name: value for name, value in item.items() if name != "deliveries"})
    deliveries = item.get("deliveries")
    if isinstance(deliveries, list) and deliveries:
        click.echo()
        show_list(options, deliveries, _DELIVERY_COLUMNS, "deliveries")
        attempts = [
            {"deliveryId": delivery.get("deliveryId"), **attempt}
            for delivery in deliveries
            for attempt in delivery.get("attemptLog") or ()
        ]
        if attempts:
            click.echo()
            show_list(options, attempts, _ATTEMPT_COLUMNS, "attempts")


@click.group("dead-letters")
def dead_letters() -> None:
    """List, redrive or purge dead letters.

    A dead letter is a delivery that gave up: redriving delivers it again.
    """


def _dead_time(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--since``/``--until`` of dead letters: RFC 3339 and Unix seconds go as given; a
    duration (``10m``, ``2h``, ``1d``) is read as `eg logs` and `eg events replay` read it
    (the gateway's own rule, :func:`~eventgateway.api.params.parse_time`) and sent as the
    Unix time it names, since the gateway takes durations only there.

    Raises:
        click.BadParameter: none of the three forms.
    """
    if value is None:
        return None
    import time

    from eventgateway.api.params import parse_time
    from eventgateway.errors import ValidationError

    name = param.name or "time"
    try:
        parse_time(value, name)
    except ValidationError:
        pass
    else:
        return value
    try:
        return f"{parse_time(value, name, now_s=time.time()):.6f}"
    except ValidationError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


_SINCE_HELP: Final = "RFC 3339, Unix seconds, or a duration ago: 10m, 2h, 1d"


@dead_letters.command("ls")
@click.option("--subscription", "subscription_id", metavar="ID", help="Only those of it.")
@click.option("--since", metavar="TIME", callback=_dead_time, help=f"Dead since ({_SINCE_HELP}).")
@click.option("--until", metavar="TIME", callback=_dead_time, help=f"Dead until ({_SINCE_HELP}).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@gateway_options()
def list_dead_letters(
    *,
    options: CliOptions,
    subscription_id: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """List the dead letters of the space."""
    with options.gateway() as gateway:
        items = gateway.list_dead_letters(
            subscription_id=subscription_id, since=since, until=until, limit=limit
        )
    show_list(options, items, _DEAD_LETTER_COLUMNS, "dead letters")


def _one_selection(ids: Sequence[str], filtered: bool, everything: bool, filters: str) -> None:
    chosen = [bool(ids), filtered, everything].count(True)
    if chosen != 1:
        raise click.ClickException(
            f"name the dead letters: --id ID (repeatable), {filters}, or --all"
            + ("" if chosen == 0 else " (only one of them)")
        )


def _one_by_one(ids: Sequence[str], act: Callable[[str], int]) -> tuple[int, list[str]]:
    """``act`` on each id once (the gateway counts 0 for an id that is not a dead letter):
    how many it acted on, and the ids it found no dead letter for."""
    count, missing = 0, []
    for letter_id in dict.fromkeys(ids):
        done = act(letter_id)
        count += done
        if not done:
            missing.append(letter_id)
    return count, missing


def _counted(options: CliOptions, verb: str, count: int, missing: Sequence[str] = ()) -> None:
    """Print the count; then, if some ``--id`` named no dead letter, fail naming them."""
    if options.json:
        click.echo(json.dumps({verb: count, **({"notFound": list(missing)} if missing else {})}))
    elif count or not missing:
        click.echo(f"{verb.capitalize()} {count} dead letter{'' if count == 1 else 's'}.")
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise click.ClickException(f"dead letter{plural} {', '.join(missing)} not found.")


@dead_letters.command("redrive")
@click.option("--id", "ids", multiple=True, metavar="ID", help="This dead letter (repeatable).")
@click.option("--subscription", "subscription_id", metavar="ID", help="Those of a subscription.")
@click.option(
    "--since", metavar="TIME", callback=_dead_time, help=f"Those dead since ({_SINCE_HELP})."
)
@click.option(
    "--until", metavar="TIME", callback=_dead_time, help=f"Those dead until ({_SINCE_HELP})."
)
@click.option("--all", "everything", is_flag=True, help="Every dead letter of the space.")
@gateway_options()
def redrive(
    *,
    options: CliOptions,
    ids: tuple[str, ...],
    subscription_id: str | None,
    since: str | None,
    until: str | None,
    everything: bool,
) -> None:
    """Deliver dead letters again, from attempt 1 with the subscription's current policy."""
    filtered = any(value is not None for value in (subscription_id, since, until))
    _one_selection(ids, filtered, everything, "--subscription ID / --since / --until")
    missing: list[str] = []
    with options.gateway() as gateway:
        if ids:  # one at a time: the gateway's count alone cannot say which id was not found
            count, missing = _one_by_one(ids, lambda one: gateway.redrive(ids=[one]))
        else:
            count = gateway.redrive(
                subscription_id=subscription_id, since=since, until=until, all=everything
            )
    _counted(options, "redriven", count, missing)


@dead_letters.command("purge")
@click.option("--id", "ids", multiple=True, metavar="ID", help="This dead letter (repeatable).")
@click.option("--subscription", "subscription_id", metavar="ID", help="Those of a subscription.")
@click.option("--all", "everything", is_flag=True, help="Every dead letter of the space.")
@gateway_options()
def purge(
    *, options: CliOptions, ids: tuple[str, ...], subscription_id: str | None, everything: bool
) -> None:
    """Delete dead letters for good."""
    _one_selection(ids, subscription_id is not None, everything, "--subscription ID")
    missing: list[str] = []
    with options.gateway() as gateway:
        if ids:
            count, missing = _one_by_one(ids, lambda one: gateway.purge_dead_letters(ids=[one]))
        else:
            count = gateway.purge_dead_letters(subscription_id=subscription_id, all=everything)
    _counted(options, "purged", count, missing)


RESOURCE_GROUPS: Final = (*(_config_group(kind) for kind in KINDS), events, dead_letters)
