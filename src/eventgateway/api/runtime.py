"""Code bundles and function logs on the Configuration API.

* ``POST /v1/spaces/{space}/bundles`` — the body is a zip → 201 ``{"bundleId", "size"}``,
  or 200 with the same body when that zip was uploaded before; 413 over the size limit;
  507 when extracting it would leave the disk with less free space than its reserve.
* ``GET|HEAD /v1/spaces/{space}/bundles/{bundleId}`` → ``{"bundleId", "size"}`` or 404;
  a bundle looked up counts as used (garbage collection keeps it for its grace period).
* ``GET /v1/spaces/{space}/functions/{functionId}/logs`` (``since``, ``limit``,
  ``filter``) → ``{"logs": [{"timestamp", "requestId", "stream", "message"}]}``, oldest first.
* ``GET …/functions/{functionId}/logs/stream`` (``since``, ``filter``, ``limit``) →
  Server-Sent Events: the history since ``since`` if given, then every new line as
  ``data: {…}``, and ``: keep-alive`` after 15 s without one, until the client goes away.

Both logs endpoints answer 404 ``Function "x" not found.`` for a function the space
does not have and that has no stored lines; a removed function's lines stay readable (and
followable) until retention removes them.

``since`` is RFC 3339, Unix seconds, or a duration back from now (``30s``, ``10m``,
``2h``, ``1d``, ``1h30m``). Bundles are content-addressed and shared by every space: the
``{space}`` in their paths scopes the caller's key, not the bundle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventgateway.api.config import ROUTER_HANDLERS
from eventgateway.api.params import parse_limit, parse_time
from eventgateway.api.problems import EXCEPTION_HANDLERS
from eventgateway.api.runtime_stream import EventStream, encode_lines
from eventgateway.errors import NotFoundError, ValidationError
from eventgateway.runtime.base import LogStore
from eventgateway.runtime.bundles import BundleStore, is_bundle_id
from eventgateway.store.base import ConfigStore

__all__ = ["DEFAULT_KEEPALIVE_S", "create_runtime_app", "is_runtime_path", "parse_since"]

DEFAULT_KEEPALIVE_S: Final = 15.0
_DEFAULT_LIMIT: Final = 1000
_MAX_LIMIT: Final = 10_000


def is_runtime_path(path: str) -> bool:
    """Whether a Configuration API path belongs to this app.

    ``…/bundles`` and below, and ``…/functions/{id}/logs`` and below; the function itself
    (``…/functions/{id}``) belongs to the configuration app.
    """
    parts = path.split("/")
    if len(parts) < 5 or parts[1] != "v1" or parts[2] != "spaces":
        return False
    if parts[4] == "bundles":
        return True
    return parts[4] == "functions" and len(parts) >= 7 and parts[6] == "logs"


def parse_since(raw: str, *, now_s: float) -> float:
    """A ``since`` parameter as Unix seconds: RFC 3339, Unix seconds, or a duration ago.

    Raises:
        ValidationError: none of the three forms.
    """
    return parse_time(raw, "since", now_s=now_s)


def _since(params: Mapping[str, str]) -> float | None:
    raw = params.get("since")
    if raw is None or raw == "":
        return None
    return parse_since(raw, now_s=time.time())


def _limit(params: Mapping[str, str], default: int) -> int:
    return parse_limit(params, default=default, maximum=_MAX_LIMIT)


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value) + b"\n", status, media_type="application/json")


def create_runtime_app(
    bundles: BundleStore,
    logs: LogStore,
    *,
    functions: ConfigStore | None = None,
    keepalive_s: float = DEFAULT_KEEPALIVE_S,
) -> Starlette:
    """The ASGI app serving code bundles from ``bundles`` and function logs from ``logs``.

    Args:
        bundles: where uploaded zips are stored.
        logs: the function log store, open while requests arrive.
        functions: the configuration store; with it, the logs of a function that is not
            registered and has no stored lines are 404. Without it, any name is answered
            (with no lines).
        keepalive_s: idle seconds before a log stream sends a ``: keep-alive`` comment.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``functions``.
    """

    async def require_function(space: str, function_id: str) -> None:
        if functions is None or await functions.get("functions", space, function_id) is not None:
            return
        # Removed, but its lines are kept until retention: they stay readable.
        if not await logs.query(space, function_id, limit=1):
            raise NotFoundError(f'Function "{function_id}" not found.')

    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isascii() and length.isdigit():
            # int() refuses 4,300 digits, while 19 are already more than any zip weighs.
            bundles.check_size(int(length) if len(length) <= 18 else 10**18)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            bundles.check_size(len(body), at_least=True)
        info, created = await bundles.add(bytes(body))
        return _json({"bundleId": info.bundle_id, "size": info.size}, 201 if created else 200)

    async def get_bundle(request: Request) -> Response:
        bundle_id = request.path_params["bundleId"]
        if not is_bundle_id(bundle_id):
            raise ValidationError(
                f"bundleId {bundle_id!r} is not a bundle id: use the 64 hex digits (sha256 of "
                "the zip) that the upload returned"
            )
        info = bundles.get(bundle_id)
        if info is None:
            raise NotFoundError(f'Bundle "{bundle_id}" not found.')
        bundles.touch(bundle_id)  # eg deploy skips the upload and names it next
        return _json({"bundleId": info.bundle_id, "size": info.size})

    async def query_logs(request: Request) -> Response:
        params = request.query_params
        space, function_id = request.path_params["space"], request.path_params["functionId"]
        since = _since(params)  # a bad parameter is 400 even for an unknown function
        limit = _limit(params, _DEFAULT_LIMIT)
        await require_function(space, function_id)
        found = await logs.query(
            space, function_id, since=since, limit=limit, filter=params.get("filter") or None
        )
        return Response(b'{"logs":' + encode_lines(found) + b"}\n", media_type="application/json")

    async def stream_logs(request: Request) -> Response:
        params = request.query_params
        space, function_id = request.path_params["space"], request.path_params["functionId"]
        since = _since(params)
        limit = _limit(params, _MAX_LIMIT)
        text = params.get("filter") or None
        await require_function(space, function_id)
        # Open the tail before reading the history, so no line falls between the two;
        # EventStream drops the lines that both hold.
        tail = logs.tail(space, function_id)
        try:
            history = []
            if since is not None:
                history = await logs.query(
                    space, function_id, since=since, limit=limit, filter=text
                )
        except BaseException:
            await _close(tail)
            raise
        return EventStream(tail, history, text, keepalive_s=keepalive_s)

    base = "/v1/spaces/{space}"
    routes = [
        Route(f"{base}/bundles", upload, methods=["POST"]),
        Route(f"{base}/bundles/{{bundleId}}", get_bundle, methods=["GET", "HEAD"]),
        Route(f"{base}/functions/{{functionId}}/logs", query_logs, methods=["GET"]),
        Route(f"{base}/functions/{{functionId}}/logs/stream", stream_logs, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={**EXCEPTION_HANDLERS, **ROUTER_HANDLERS})
    app.router.redirect_slashes = False  # httprouter's rules, as in the configuration app
    return app


async def _close(tail: object) -> None:
    aclose = getattr(tail, "aclose", None)
    if aclose is not None:
        await aclose()
