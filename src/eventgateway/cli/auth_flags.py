"""Auth mode's flags on ``eg serve``: ``--auth/--no-auth``, ``--claim-policy`` and
``--aws-default-credentials``.

The operator key is read from ``EG_OPERATOR_KEY`` only, never from a flag: a flag's value
shows in ``ps`` for every user of the machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["auth_options", "aws_credentials_option", "operator_key_from_env"]

_F = TypeVar("_F", bound=Callable[..., Any])


def auth_options() -> Callable[[_F], _F]:
    """Add ``auth: bool`` and ``claim_policy: str`` to a command."""

    def decorate(command: _F) -> _F:
        command = click.option(
            "--claim-policy",
            type=click.Choice(["open", "operator"]),
            default="open",
            show_default=True,
            envvar="EG_CLAIM_POLICY",
            help="Who may claim a space: anyone who reaches the Configuration API, or only "
            "holders of the operator key.",
        )(command)
        return click.option(
            "--auth/--no-auth",
            "auth",
            default=True,
            show_default=True,
            envvar="EG_AUTH",
            help="Require API keys on the Configuration API (docs/security.md); --no-auth "
            "is the original's open gateway.",
        )(command)

    return decorate


def aws_credentials_option() -> Callable[[_F], _F]:
    """Add ``aws_default_credentials: bool | None`` (``None``: follow the auth mode)."""
    return click.option(
        "--aws-default-credentials/--no-aws-default-credentials",
        "aws_default_credentials",
        default=None,
        envvar="EG_AWS_DEFAULT_CREDENTIALS",
        help="Let AWS functions registered without awsAccessKeyId/awsSecretAccessKey be "
        "called with this gateway's own AWS credentials (environment, ~/.aws, instance "
        "role), which every space could then use [default: refuse with auth, allow with "
        "--no-auth].",
    )


def operator_key_from_env() -> str | None:
    """``EG_OPERATOR_KEY``, or ``None`` when unset or empty."""
    return os.environ.get("EG_OPERATOR_KEY") or None
