"""Which item a Configuration API item URL names: ``/v1/spaces/{space}/<kind>/{id}``.

Routing sees the percent-decoded path, so an ID holding ``/`` (an event type may be
named ``a/b``: the contract sets no character rule for names) would read as two
segments and match nothing; the original could then neither read nor delete it, nor
the space that held it. IDs are therefore read from the raw, still percent-encoded path:
``/eventtypes/a%2Fb`` names ``a/b``, while ``/eventtypes/a/b`` (two raw segments) stays
an unknown route, as in the original.

CORS IDs are percent-encoded themselves (``GET%2Ftest``) and are compared in that form.
A client may encode them a little differently (``%3A`` for ``:``, lower-case hex), so the
ID from the URL is decoded and encoded again the one way the IDs are made.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.requests import Request

from eventgateway.model.ids import path_escape

__all__ = ["canonical_cors_id", "item_id", "raw_item_rest", "raw_last_segment"]

# "", "v1", "spaces", "{space}", "<kind>": what precedes the ID in the raw path.
_PREFIX_SEGMENTS = 5


def _raw_path(request: Request) -> str | None:
    raw = request.scope.get("raw_path")
    if not raw:
        return None
    return str(raw.decode("utf-8", "replace").split("?", 1)[0])


def raw_last_segment(request: Request) -> str:
    """The last segment of the still percent-encoded request path.

    CORS IDs contain ``%2F``; routing sees the decoded path (``GET/test``), so the ID is
    taken from the raw path, as the original did.
    """
    path = _raw_path(request) or request.scope["path"]
    return path.rsplit("/", 1)[-1]


def raw_item_rest(request: Request) -> str | None:
    """What follows ``/v1/spaces/{space}/<kind>/`` in the raw path (``a%2Fb``, ``x/``…).

    ``None`` when the raw path does not have the routed space in its place (a ``%2F``
    before the ID shifts the segments). Without a raw path (some ASGI servers leave it
    out), the decoded rest is encoded again, so every ``/`` in it separates segments.
    """
    raw = _raw_path(request)
    if raw is None:
        return quote(str(request.path_params["rest"]), safe="/")
    segments = raw.split("/", _PREFIX_SEGMENTS)
    if len(segments) <= _PREFIX_SEGMENTS or unquote(segments[3]) != request.path_params["space"]:
        return None
    return segments[_PREFIX_SEGMENTS]


def item_id(rest: str | None) -> str | None:
    """The ID a raw rest names when it is one non-empty segment, percent-decoded."""
    if not rest or "/" in rest:
        return None
    return unquote(rest)


def canonical_cors_id(raw_id: str) -> str:
    """``raw_id`` (``GET%2Fusers%2F%3Aid``) as :func:`~eventgateway.model.ids.cors_id` makes it.

    ``GET%2Fusers%2F:id`` here. An ID without a ``/`` once decoded is returned unchanged:
    no CORS configuration has it, and the 404 should quote what the client sent.
    """
    method, slash, path = unquote(raw_id).partition("/")
    if not slash:
        return raw_id
    return method + path_escape(slash + path)
