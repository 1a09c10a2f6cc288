"""`eg spaces ls` without a key or space: what every key saved for the gateway may see.

A space key sees only its own space, so the credentials file's keys for one gateway are
asked in turn and their answers merged; a key the gateway no longer knows is skipped
with a warning.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from eventgateway.cli.context import CliOptions
from eventgateway.cli.credentials import Credentials, config_base
from eventgateway.errors import ConfigError

__all__ = ["visible_spaces"]


def visible_spaces(options: CliOptions) -> list[dict[str, Any]]:
    """The spaces ``options``' key may see; when neither a key nor a space was chosen, the
    union of what each key saved for the gateway may see, sorted by name.

    Raises:
        GatewayError: the gateway refused otherwise, or could not be reached.
        ConfigError: every saved key was refused.
    """
    from eventgateway.sdk._wire import GatewayError

    base = None
    if not (options.space_given or options.api_key_source in ("flag", "service")):
        base = config_base(options.url, options.config_url, options.space)
    saved = {} if base is None else Credentials().saved(base)
    if saved and options.api_key is None:
        try:  # a gateway without auth lists every space to anyone
            return _list(options)
        except GatewayError as exc:
            if exc.status != 401:
                raise
    elif not saved:
        return _list(options)
    found: dict[str, dict[str, Any]] = {}
    refused: list[tuple[str, GatewayError]] = []
    for name, key in saved.items():
        try:
            items = _list(dataclasses.replace(options, space=name, api_key=key.api_key))
        except GatewayError as exc:
            if exc.status not in (401, 403):
                raise
            refused.append((name, exc))  # revoked, or a gateway that lost its data
            continue
        for item in items:
            found.setdefault(str(item.get("name")), item)
    if refused and not found:
        raise ConfigError(
            f"every key saved for this gateway in {Credentials().path} was refused (spaces "
            f"{', '.join(name for name, _ in refused)}: {refused[0][1].message.rstrip('.')}): "
            "pass --api-key, or claim a space: eg spaces claim NAME"
        )
    for name, error in refused:
        click.secho(
            f"Warning: the key saved for space {name} was refused "
            f"({error.message.rstrip('.')}); the spaces it sees are not listed",
            fg="yellow",
            err=True,
        )
    return [found[name] for name in sorted(found)]


def _list(options: CliOptions) -> list[dict[str, Any]]:
    with options.gateway() as gateway:
        return gateway.list_spaces()
