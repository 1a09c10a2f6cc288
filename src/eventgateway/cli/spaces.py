"""`eg spaces` and `eg keys`: claim a space, and manage its API keys.

Claiming a space creates it on the gateway and returns its first key (every scope); the
key is saved in the credentials file (:mod:`~eventgateway.cli.credentials`), where later
`eg` commands find it. ``eg deploy`` claims the same way (:func:`claim_if_free`) when no
key is known for the space it deploys to.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import click

from eventgateway.cli.context import CliOptions, gateway_options, with_saved_key
from eventgateway.cli.credentials import Credentials, config_base
from eventgateway.cli.option_checks import space_name
from eventgateway.cli.output import echo_json, key, show_item, show_list
from eventgateway.errors import ConfigError

__all__ = ["Claim", "ClaimState", "claim_if_free", "for_space", "keys", "spaces"]

ClaimState = Literal["claimed", "taken", "unsupported"]
# The gateway's scopes, spelled out rather than imported from the server's auth package:
# the CLI is a client, and may talk to a gateway of another version.
_SCOPES: Final = ("admin", "emit", "read")
_DURATION: Final = re.compile(r"(\d+)([smhdw])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_SPACE_COLUMNS: Final = (
    ("name", key("name")),
    ("emit", lambda item: "key required" if item.get("emitRequiresKey") else "public"),
    ("createdAt", key("createdAt")),
)
_KEY_COLUMNS: Final = (
    ("keyId", key("keyId")),
    ("scopes", lambda item: ",".join(item.get("scopes") or ())),
    ("expiresAt", key("expiresAt")),
    ("createdAt", key("createdAt")),
)


def for_space(options: CliOptions, name: str) -> CliOptions:
    """``options`` working on space ``name``: a key given by flag, variable or
    ``serverless.yml`` is kept (it may be the operator's); one from the credentials file
    is swapped for the file's key of ``name``."""
    if name == options.space:
        return options
    if options.api_key_source in ("flag", "service"):
        return dataclasses.replace(options, space=name)
    return with_saved_key(
        dataclasses.replace(options, space=name, api_key=None, api_key_source=None)
    )


def _base(options: CliOptions) -> str:
    base = config_base(options.url, options.config_url, options.space)
    if base is None:  # the request that came before would have failed already
        raise ConfigError(f"--url {options.url!r} is not an http(s) URL")
    return base


def remember(options: CliOptions, reply: Mapping[str, Any]) -> pathlib.Path | None:
    """Save the key of a claim of ``options.space``; the file's path, or None when it could
    not be written (then the key is printed, since the gateway shows it only once)."""
    credentials = Credentials()
    try:
        credentials.save(_base(options), options.space, reply)
    except (OSError, ConfigError) as exc:
        click.secho(
            f"Warning: could not save the key of space {options.space} in "
            f"{credentials.path} ({exc}). It will not be shown again; store it now: "
            f"{reply['apiKey']}",
            fg="yellow",
            err=True,
        )
        return None
    return credentials.path


def _claimed(space: str, path: pathlib.Path | None) -> str:
    if path is None:
        return f"Claimed space {space}; its admin key is printed above, and nowhere else"
    return f"Claimed space {space}; its admin key is saved in {path}"


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """What a deploy's attempt to claim its space came to.

    ``state``: ``claimed`` (``options`` carry the new key), ``taken`` (409: someone holds
    the space, or the gateway runs open and it was claimed before; ``refusal`` is the
    gateway's message) or ``unsupported`` (a gateway without spaces).
    """

    options: CliOptions
    state: ClaimState
    refusal: str = ""

    def taken_error(self) -> ConfigError:
        """The one line for a deploy refused after the claim found the space taken."""
        space = self.options.space
        # 409s say "already exists" (contract §5.2); any other is a name nobody holds
        # but that may not be claimed (deleted, or configured before auth was turned on).
        if not self.refusal or "already exists" in self.refusal:
            return ConfigError(
                f"space {space} is already claimed by someone else: deploy to another space "
                "(custom.eventgateway.space) or ask its owner for a key (EG_API_KEY)"
            )
        return ConfigError(
            f"space {space} cannot be claimed ({self.refusal.rstrip('.')}): deploy to another "
            "space (custom.eventgateway.space) or ask the gateway's operator for a key "
            "(EG_API_KEY)"
        )


def claim_if_free(
    options: CliOptions, *, quiet: bool, say: Callable[[str], None] = click.echo
) -> Claim:
    """Try to claim ``options.space`` for a deploy that has no key for it (see :class:`Claim`);
    ``say`` prints the line saying so.

    Raises:
        ConfigError: only the gateway's operator may claim spaces there.
        GatewayError: the gateway could not be reached, or refused otherwise.
    """
    from eventgateway.sdk._wire import GatewayError

    with options.gateway() as gateway:
        try:
            reply = gateway.claim_space(options.space)
        except GatewayError as exc:
            if exc.status == 409:
                return Claim(options, "taken", exc.message)
            if exc.status in (404, 405):
                return Claim(options, "unsupported")
            if exc.status in (401, 403):  # a gateway where only its operator may claim
                raise ConfigError(
                    f"no key for space {options.space}, and this gateway lets only its "
                    f"operator claim spaces ({exc.message}): ask the operator for a key of "
                    "the space (EG_API_KEY)"
                ) from exc
            raise
    path = remember(options, reply)
    if not quiet:
        say(_claimed(options.space, path))
    claimed = dataclasses.replace(options, api_key=reply["apiKey"], api_key_source="credentials")
    return Claim(claimed, "claimed")


# -- eg spaces -------------------------------------------------------------------------------


@click.group("spaces")
def spaces() -> None:
    """Claim spaces; show, change or remove them.

    A claimed space has API keys: its first one is saved in the credentials file.
    """


@spaces.command("claim")
@click.argument("name", callback=space_name)
@click.option("--private", is_flag=True, help="Only holders of an emit key may send events.")
@gateway_options()
def claim(*, options: CliOptions, name: str, private: bool) -> None:
    """Claim space NAME, and save its admin key in the credentials file."""
    from eventgateway.sdk._wire import GatewayError

    target = for_space(options, name)
    with target.gateway() as gateway:
        try:
            reply = gateway.claim_space(name, emit_requires_key=True if private else None)
        except GatewayError as exc:
            if exc.status == 409:
                raise click.ClickException(
                    f"cannot claim space {name}: {exc.message.rstrip('.')}; choose another "
                    "name, or ask its owner for a key (EG_API_KEY)"
                ) from exc
            raise
    path = remember(target, reply)
    if options.json:
        shown = {name: value for name, value in reply.items() if name != "apiKey"}
        echo_json({**shown, "credentialsFile": None if path is None else str(path)})
    else:
        click.echo(_claimed(name, path))


@spaces.command("ls")
@gateway_options()
def list_spaces(*, options: CliOptions) -> None:
    """List the spaces the key may see (all of them with the operator key).

    Without a key or a space (flag, variable or serverless.yml), the spaces every key
    saved in the credentials file for this gateway may see.
    """
    from eventgateway.cli.spaces_visible import visible_spaces

    items = visible_spaces(options)
    if not items and not options.json:
        click.echo("No spaces.")
        return
    show_list(options, items, _SPACE_COLUMNS, "spaces")


@spaces.command("get")
@click.argument("name", required=False, callback=space_name)
@gateway_options()
def get_space(*, options: CliOptions, name: str | None) -> None:
    """Show space NAME [default: the space in use]."""
    target = for_space(options, name or options.space)
    with target.gateway() as gateway:
        item = gateway.get_space(target.space)
    show_item(options, item)


@spaces.command("update")
@click.option(
    "--private/--public",
    "private",
    default=None,
    help="Private: sending events needs an emit key. Public: anyone may send (webhooks).",
)
@gateway_options()
def update_space(*, options: CliOptions, private: bool | None) -> None:
    """Change the space in use: --private or --public."""
    if private is None:
        raise click.UsageError("say --private (emitting needs a key) or --public (anyone may emit)")
    with options.gateway() as gateway:
        item = gateway.update_space(emit_requires_key=private)
    if options.json:
        show_item(options, item)
    elif private:
        click.echo(f"Space {options.space} is private: emitting needs a key with the emit scope.")
    else:
        click.echo(f"Space {options.space} is public: anyone may emit to it.")


@spaces.command("rm")
@click.argument("name", callback=space_name)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@gateway_options()
def remove_space(*, options: CliOptions, name: str, yes: bool) -> None:
    """Delete space NAME (empty: `eg remove` its services first) and its keys."""
    if not yes:
        click.confirm(
            f"Delete space {name} and its keys? Nobody but the operator can claim it again.",
            abort=True,
        )
    target = for_space(options, name)
    with target.gateway() as gateway:
        gateway.delete_space(name)
    forgotten = Credentials().forget(_base(target), name)
    if options.json:
        click.echo(json.dumps({"removed": "space", "id": name}))
        return
    click.echo(f"Removed space {name}.")
    if forgotten:
        click.echo(f"Its key was removed from {Credentials().path}.")


# -- eg keys ---------------------------------------------------------------------------------


@click.group("keys")
def keys() -> None:
    """Create, list and revoke the API keys of the space in use."""


def expires_at(raw: str, now: datetime.datetime) -> str:
    """``--expires``: a duration from ``now`` (``30d``, ``12h``, ``2w``) or an RFC 3339 time,
    as the RFC 3339 UTC time the gateway takes.

    Raises:
        click.BadParameter: neither, or a time without a zone, or one already past.
    """
    from eventgateway.sdk._space_calls import rfc3339

    duration = _DURATION.fullmatch(raw.strip())
    if duration is not None:
        seconds = int(duration.group(1)) * _UNIT_S[duration.group(2)]
        return rfc3339(now + datetime.timedelta(seconds=seconds))
    try:
        when = datetime.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is neither a duration (30d, 12h, 90m, 2w) nor an RFC 3339 time "
            "(2027-01-31T00:00:00Z)",
            param_hint="--expires",
        ) from None
    if when.tzinfo is None:
        raise click.BadParameter(
            f"{raw!r} has no time zone: add Z for UTC or an offset", param_hint="--expires"
        )
    if when <= now:
        raise click.BadParameter(f"{raw!r} is already past", param_hint="--expires")
    return rfc3339(when)


@keys.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(_SCOPES),
    help="What the key may do (repeatable): admin, emit, read.",
)
@click.option("--expires", metavar="30d|RFC3339", help="When the key stops working.")
@gateway_options()
def create_key(*, options: CliOptions, scopes: tuple[str, ...], expires: str | None) -> None:
    """Create a key of the space; the key alone is printed on standard output, once."""
    when = None if expires is None else expires_at(expires, datetime.datetime.now(datetime.UTC))
    with options.gateway() as gateway:
        reply = gateway.create_key(list(dict.fromkeys(scopes)), expires_at=when)
    if options.json:
        echo_json(reply)
    else:
        scopes_shown = ", ".join(reply.get("scopes") or scopes)
        click.echo(
            f"Created key {reply.get('keyId')} of space {options.space} (scopes {scopes_shown}; "
            f"expires {reply.get('expiresAt') or 'never'}).",
            err=True,
        )
        click.echo(reply["apiKey"])
    click.secho(
        "Warning: this is the only time the key is shown; store it now (e.g. as EG_API_KEY).",
        fg="yellow",
        err=True,
    )


@keys.command("ls")
@gateway_options()
def list_keys(*, options: CliOptions) -> None:
    """List the keys of the space: ids, scopes and times, never the secrets."""
    with options.gateway() as gateway:
        items = gateway.list_keys()
    # The gateway never lists secrets; dropped here too, so no output can ever carry one.
    shown = [{name: value for name, value in item.items() if name != "apiKey"} for item in items]
    show_list(options, shown, _KEY_COLUMNS, "keys")


@keys.command("revoke")
@click.argument("key_id", metavar="KEY_ID")
@gateway_options()
def revoke_key(*, options: CliOptions, key_id: str) -> None:
    """Revoke key KEY_ID of the space at once."""
    with options.gateway() as gateway:
        gateway.revoke_key(key_id)
    credentials = Credentials()
    forgotten = credentials.forget(_base(options), options.space, key_id=key_id)
    if options.json:
        click.echo(json.dumps({"revoked": key_id, "space": options.space}))
        return
    click.echo(f"Revoked key {key_id} of space {options.space}.")
    if forgotten:
        click.echo(f"It was the key saved in {credentials.path}; removed it there.")
