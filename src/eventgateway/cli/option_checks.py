"""Checks of the URL and space options every ``eg`` command shares (``cli/context.py``),
and of the space names commands take as arguments (``eg spaces get NAME``).

Click callbacks: a bad value is a usage error (exit 2) naming the option, or the
environment variable that set it, before any request is made. :func:`url_and_space`
reads a URL's path once the space is known, wherever each came from.
"""

from __future__ import annotations

import click

from eventgateway.model.validate import is_valid_space

__all__ = ["gateway_time", "http_url", "space_name", "url_and_space"]


# The rule `custom.eventgateway.url` follows too (deploy/manifest.py), so that a URL is
# accepted or refused the same wherever it is given; a flag such as `--url notaurl` is far
# likelier a typo than a host named "notaurl", and `http://a b` would fail only later.
def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return value  # not given (an empty EG_URL counts as not given)
    from eventgateway.deploy.manifest import is_http_url

    if not is_http_url(value):
        raise click.BadParameter(
            f"{value!r}{_from_env(ctx, param)} is not an http(s) URL: give the scheme and a "
            "host without spaces or other invalid characters, e.g. http://localhost:4000",
            ctx,
            param,
        )
    return value


# Checked here as the gateway checks it, so that a typo fails before any request is made.
def space_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return value
    if not is_valid_space(value):
        raise click.BadParameter(
            f"{value!r}{_from_env(ctx, param)} is not a valid space name: use 3 to 255 "
            'characters from a-z, A-Z, 0-9, ".", "-" and "_"',
            ctx,
            param,
        )
    return value


# Checked with the gateway's own rule (api/params.py), so that a typo is a usage error
# naming the option, as every other bad value is, rather than the gateway's 400 later.
def gateway_time(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    import time

    from eventgateway.api.params import parse_time
    from eventgateway.errors import ValidationError

    try:
        parse_time(value, param.name or "time", now_s=time.time())
    except ValidationError as exc:
        raise click.BadParameter(f"{exc}{_from_env(ctx, param)}", ctx, param) from None
    return value  # sent as given: the gateway reads a duration against its own clock


# click names the option in the message; say so when its variable, not a flag, set it.
def _from_env(ctx: click.Context, param: click.Parameter) -> str:
    if param.name is None or not isinstance(param.envvar, str):
        return ""
    if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.ENVIRONMENT:
        return ""
    return f" (from {param.envvar})"


def url_and_space(url: str, space: str | None) -> tuple[str, str | None]:
    """``url`` without a last path segment naming the space, and the space, as the SDK
    reads them (:func:`~eventgateway.sdk._hosts.path_space`): ``http://localhost:4000/acme``
    is ``http://localhost:4000`` in space ``acme`` (``eg deploy`` prints that URL as where
    to emit, so users paste it); any other path is a prefix (a reverse proxy's)."""
    from eventgateway.sdk._hosts import path_space

    try:
        return path_space(url, space, None)
    except ValueError:  # a bad URL: its own check reports it, naming the option
        return url, space
