"""Spaces and API keys on the Configuration API (``docs/security.md``).

* ``POST /v1/spaces`` ``{"name", "emitRequiresKey"?}`` → 201 ``{"name", "apiKey",
  "keyId", "scopes", "emitRequiresKey", "createdAt"}``: claims the space; ``apiKey`` is
  shown this once. 409 ``Space "S" already exists.`` when claimed.
* ``GET /v1/spaces`` → ``{"spaces": [...]}`` (the operator sees all, a space key its own);
  ``GET``, ``PATCH`` ``{"emitRequiresKey"}`` and ``DELETE`` (204) ``/v1/spaces/{space}``.
  ``DELETE`` is 400 while the space holds configuration and, in auth mode, dead letters
  or deliveries not yet settled (the message counts them and says what to do); after
  it, the space's delivery history and function logs are deleted.
* ``POST /v1/spaces/{space}/keys`` ``{"scopes": [...], "expiresAt"?}`` → 201 ``{"keyId",
  "apiKey", "scopes", "expiresAt", "createdAt"}``; ``GET …/keys`` → ``{"keys": [...]}``
  without secrets; ``DELETE …/keys/{keyId}`` → 204, effective from the next request.

``expiresAt`` is RFC 3339 or Unix seconds; times are answered in RFC 3339 (UTC). Who may
call what is decided before these handlers, by :class:`~eventgateway.api.auth.AuthGuard`.
"""

from __future__ import annotations

import math
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventgateway.api.auth import request_principal
from eventgateway.api.config import ROUTER_HANDLERS
from eventgateway.api.json_body import decode_json, json_problem
from eventgateway.api.params import parse_time
from eventgateway.api.problems import EXCEPTION_HANDLERS
from eventgateway.auth.base import SCOPES, Scope
from eventgateway.auth.keys import is_expired
from eventgateway.auth.spaces import IssuedKey, SpaceAdmin
from eventgateway.errors import ValidationError
from eventgateway.model.spaces import ApiKey, Space
from eventgateway.queue.log_views import rfc3339

__all__ = ["create_spaces_app", "is_spaces_path"]

_NO_STORE: Final = {"Cache-Control": "no-store"}  # answers that carry a secret
_LATEST_EXPIRY_S: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, the last RFC 3339 second


def is_spaces_path(path: str) -> bool:
    """Whether a Configuration API path belongs to this app.

    ``/v1/spaces``, ``/v1/spaces/{space}`` and ``/v1/spaces/{space}/keys…`` (and their
    trailing-slash forms, which this app redirects as the others do).
    """
    parts = path.split("/")
    if parts[:3] != ["", "v1", "spaces"]:
        return False
    return len(parts) <= 4 or parts[4] == "keys" or (len(parts) == 5 and parts[4] == "")


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(value) + b"\n", status, headers=headers, media_type="application/json"
    )


class _ClaimBody(msgspec.Struct):
    name: str
    emitRequiresKey: bool = False


class _SpaceUpdate(msgspec.Struct):
    emitRequiresKey: bool


class _KeyBody(msgspec.Struct):
    scopes: list[str]
    expiresAt: str | float | None = None


def _decode(body: bytes, kind: type[Any], example: str) -> Any:
    if not body.strip():
        raise ValidationError(f"The request body is empty: send {example}")
    try:
        return decode_json(body, kind)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise ValidationError(f"The request body {json_problem(exc)}: send {example}") from None


def _scopes(raw: list[str]) -> list[Scope]:
    known: dict[str, Scope] = {scope: scope for scope in SCOPES}
    unknown = [scope for scope in raw if scope not in known]
    if unknown:
        raise ValidationError(f'scopes has {unknown[0]!r}: use "admin", "emit" or "read"')
    return [known[scope] for scope in raw]


def _expires_at(raw: str | float | None) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        seconds = parse_time(raw, "expiresAt")
    elif not math.isfinite(raw):
        raise ValidationError(f"expiresAt {raw!r} is not a time: use RFC 3339 or Unix seconds")
    else:
        seconds = float(raw)
    # Past times are refused by SpaceAdmin ("in the past"); a time RFC 3339 cannot write
    # would be stored and then fail every answer that shows the key.
    if seconds > _LATEST_EXPIRY_S:
        raise ValidationError(
            f"expiresAt {raw!r} is too far in the future: the latest is 9999-12-31T23:59:59Z"
        )
    return seconds


def _space_view(space: Space) -> dict[str, Any]:
    return {
        "name": space.name,
        "emitRequiresKey": space.emit_requires_key,
        "createdAt": rfc3339(space.created_at),
    }


def _key_view(key: ApiKey, now: float) -> dict[str, Any]:
    # Never the hash: a listing is for recognising keys, not for checking them.
    return {
        "keyId": key.key_id,
        "scopes": key.scopes,
        "expiresAt": None if key.expires_at is None else rfc3339(key.expires_at),
        "createdAt": rfc3339(key.created_at),
        "expired": is_expired(key.expires_at, now),
    }


def _issued_view(issued: IssuedKey) -> dict[str, Any]:
    key = issued.key
    return {
        "keyId": key.key_id,
        "apiKey": issued.token,
        "scopes": key.scopes,
        "expiresAt": None if key.expires_at is None else rfc3339(key.expires_at),
        "createdAt": rfc3339(key.created_at),
    }


def create_spaces_app(admin: SpaceAdmin, *, auth: bool) -> Starlette:
    """The ASGI app for spaces and keys over ``admin``.

    Args:
        admin: the space operations (store and key ring).
        auth: whether the gateway runs in auth mode. Without it anyone may claim any
            name, as the operator could (nothing is enforced anyway).

    .. versionadded:: 0.2.0
    """

    async def claim(request: Request) -> Response:
        body = _decode(await request.body(), _ClaimBody, '{"name": "<space>"}')
        principal = request_principal(request.scope)
        privileged = not auth or (principal is not None and principal.is_operator)
        space, issued = await admin.claim(
            body.name, emit_requires_key=body.emitRequiresKey, privileged=privileged
        )
        view = {
            "name": space.name,
            "apiKey": issued.token,
            "keyId": issued.key.key_id,
            "scopes": issued.key.scopes,
            "emitRequiresKey": space.emit_requires_key,
            "createdAt": rfc3339(space.created_at),
        }
        return _json(view, 201, _NO_STORE)

    async def list_spaces(request: Request) -> Response:
        principal = request_principal(request.scope)
        only = None if principal is None else principal.space
        return _json({"spaces": [_space_view(space) for space in await admin.list(only)]})

    async def get_space(request: Request) -> Response:
        return _json(_space_view(await admin.get(request.path_params["space"])))

    async def update_space(request: Request) -> Response:
        body = _decode(await request.body(), _SpaceUpdate, '{"emitRequiresKey": true}')
        space = await admin.update(
            request.path_params["space"], emit_requires_key=body.emitRequiresKey
        )
        return _json(_space_view(space))

    async def delete_space(request: Request) -> Response:
        await admin.delete(request.path_params["space"])
        return Response(status_code=204)

    async def create_key(request: Request) -> Response:
        body = _decode(await request.body(), _KeyBody, '{"scopes": ["emit"]}')
        issued = await admin.create_key(
            request.path_params["space"],
            _scopes(body.scopes),
            expires_at=_expires_at(body.expiresAt),
        )
        return _json(_issued_view(issued), 201, _NO_STORE)

    async def list_keys(request: Request) -> Response:
        keys = await admin.list_keys(request.path_params["space"])
        now = admin.keyring.now()
        return _json({"keys": [_key_view(key, now) for key in keys]})

    async def revoke_key(request: Request) -> Response:
        await admin.revoke_key(request.path_params["space"], request.path_params["keyId"])
        return Response(status_code=204)

    routes = [
        Route("/v1/spaces", list_spaces, methods=["GET"]),
        Route("/v1/spaces", claim, methods=["POST"]),
        Route("/v1/spaces/{space}", get_space, methods=["GET"]),
        Route("/v1/spaces/{space}", update_space, methods=["PATCH"]),
        Route("/v1/spaces/{space}", delete_space, methods=["DELETE"]),
        Route("/v1/spaces/{space}/keys", list_keys, methods=["GET"]),
        Route("/v1/spaces/{space}/keys", create_key, methods=["POST"]),
        Route("/v1/spaces/{space}/keys/{keyId}", revoke_key, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers={**EXCEPTION_HANDLERS, **ROUTER_HANDLERS})
    app.router.redirect_slashes = False  # httprouter's redirects (ROUTER_HANDLERS) instead
    return app
