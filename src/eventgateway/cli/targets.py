"""The SSRF guard's flags on ``eg serve`` and the delivery worker.

``eg serve`` reads them (and ``EG_ALLOW_PRIVATE_TARGETS``, ``EG_ALLOW_TARGETS``); the hidden
``eg _callworker`` gets them from its gateway, stated in full and never from the environment,
so the worker's guard is exactly the gateway's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import click

from eventgateway.providers.targets import IPNetwork, TargetPolicy, parse_networks

__all__ = ["policy_from_flags", "private_targets", "target_options"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _networks(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[IPNetwork, ...]:
    try:
        return parse_networks(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def target_options(*, from_env: bool = True) -> Callable[[_F], _F]:
    """Add ``allow_private_targets: bool | None`` and ``allowed_targets`` to a command.

    Args:
        from_env: read ``EG_ALLOW_PRIVATE_TARGETS`` and ``EG_ALLOW_TARGETS`` (space-separated)
            when the flags are not given.
    """

    def decorate(command: _F) -> _F:
        command = click.option(
            "--allow-target",
            "allowed_targets",
            multiple=True,
            metavar="CIDR",
            callback=_networks,
            envvar="EG_ALLOW_TARGETS" if from_env else None,
            help="An address or network calls may always reach, e.g. 10.1.2.3 or "
            "10.0.0.0/8 (repeatable).",
        )(command)
        return click.option(
            "--allow-private-targets/--deny-private-targets",
            "allow_private_targets",
            default=None,
            envvar="EG_ALLOW_PRIVATE_TARGETS" if from_env else None,
            help="Let functions' URLs reach loopback, private, link-local (cloud metadata) "
            "and other non-public addresses [default: deny with auth, allow with --no-auth].",
        )(command)

    return decorate


def private_targets(allow: bool | None) -> Literal["allow", "deny"] | None:
    """The ``Settings.private_targets`` value for the flag (``None``: follow the auth mode)."""
    if allow is None:
        return None
    return "allow" if allow else "deny"


def policy_from_flags(allow: bool | None, allowed: tuple[IPNetwork, ...]) -> TargetPolicy:
    """The worker's policy: as its gateway said; refusing if it said nothing."""
    return TargetPolicy(allow_private=bool(allow), allow_list=allowed)
