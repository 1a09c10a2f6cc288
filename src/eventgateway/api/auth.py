"""Auth mode on the Configuration API: who may call which route (``docs/security.md``).

:class:`AuthGuard` wraps the whole Configuration API. It reads the key from
``Authorization: Bearer <key>`` (any case of ``bearer``, as the original SDK sends it)
and decides before any handler runs:

* ``/v1/status`` and ``/openapi.json`` are public.
* ``POST /v1/spaces`` (claim) needs no key under claim policy ``open``, the operator key
  under ``operator``. ``GET /v1/spaces`` needs any valid key (each sees its own).
* ``/v1/spaces/{space}/…`` needs a key of ``space`` (or the operator key): ``read`` for
  GET/HEAD/OPTIONS, ``admin`` for every write (invoke, redrive, replay, purge and bundle
  uploads too) and for everything under ``…/keys``. ``admin`` implies ``read``
  (:meth:`Principal.allows`).
* Everything else (``/v1/metrics``, unknown routes) is the operator's.

No key, a malformed header, or an unknown, revoked or expired key is **401**; a key of
the right space without the scope is **403**; a key of another space gets **404**
``Space "…" not found`` whether or not that space is claimed, so keys cannot be used to
find out which spaces exist. Tokens are never logged or echoed.

The principal travels to handlers in ``scope["state"]["principal"]`` and, for the
subscription/CORS path rule (:func:`check_space_path`), in a context variable: that rule
runs deep inside :class:`~eventgateway.api.resources.ConfigResources`, which knows
nothing of requests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Final

from eventgateway.api.events import Receive, Scope, Send
from eventgateway.api.problems import error_body
from eventgateway.auth.base import Authenticator, Principal
from eventgateway.auth.base import Scope as KeyScope
from eventgateway.errors import HTTPError, ValidationError
from eventgateway.model.entities import Cors, Subscription

__all__ = [
    "CLAIM_POLICIES",
    "AuthGuard",
    "bearer_token",
    "check_space_path",
    "owns_path",
    "request_principal",
]

logger = logging.getLogger(__name__)

CLAIM_POLICIES: Final = ("open", "operator")
_PUBLIC: Final = frozenset({"/v1/status", "/v1/ready", "/openapi.json"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_MALFORMED: Final = ""  # bearer_token's answer for a header that is not "Bearer <key>"

_principal: ContextVar[Principal | None] = ContextVar("eventgateway_principal", default=None)


class _Refused(HTTPError):
    """An auth decision, answered before any handler runs."""


def _unauthorized(message: str) -> _Refused:
    return _Refused(message, status_code=401)


def _forbidden(message: str) -> _Refused:
    return _Refused(message, status_code=403)


_MISSING: Final = (
    'Missing API key: send "Authorization: Bearer <key>". '
    "To get a key, claim a space: eg spaces claim NAME"
)
# Not "claim it": somebody did. The likely cause with `eg` is a key saved for another URL.
_MISSING_CLAIMED: Final = (
    'Missing API key: space "{space}" is claimed; send "Authorization: Bearer <key>" with '
    "a key of it. (eg saves keys per Configuration API URL: one saved through another "
    "address of this gateway is not sent here; pass --api-key or EG_API_KEY.)"
)
# Paths outside /v1/spaces take the operator key only: claiming a space gives no such key.
_MISSING_OPERATOR: Final = (
    'Missing API key: send "Authorization: Bearer <operator key>". Only the operator key '
    "may use {path}: the one in <data-dir>/operator.key, or the EG_OPERATOR_KEY the "
    "gateway was started with."
)
_OPERATOR_CLAIMS: Final = (
    'Only the operator key may claim spaces on this gateway (claim policy "operator").'
)
_BAD_HEADER: Final = 'The Authorization header must read "Bearer <key>".'
_INVALID: Final = "Invalid API key: it is unknown, revoked or expired."


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header (any case of ``bearer``).

    ``None`` when there is no such header; ``""`` when it does not have that form.
    """
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return _MALFORMED
            return token
    return None


def request_principal(scope: Mapping[str, Any]) -> Principal | None:
    """The principal :class:`AuthGuard` admitted the request with (``None``: no key/no auth)."""
    principal = scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else None


def owns_path(space: str, path: str) -> bool:
    """Whether Events API ``path`` lies in ``space``'s prefix: ``/<space>`` or below it."""
    return path == f"/{space}" or path.startswith(f"/{space}/")


def check_space_path(entity: Subscription | Cors) -> None:
    """Refuse a subscription or CORS entry outside its space's path prefix (auth mode).

    The hosted original's rule (contract §2.8): without it one tenant could subscribe to
    another's paths and receive its events. The operator key may use any path: paths
    outside every space's prefix are the operator's.

    Raises:
        ValidationError: the path does not start with ``/<space>``.
    """
    principal = _principal.get()
    if principal is not None and principal.is_operator:
        return
    if owns_path(entity.space, entity.path):
        return
    what = "Subscription" if isinstance(entity, Subscription) else "CORS"
    raise ValidationError(
        f"{what} path has to be prefixed with space name (/{entity.space}): "
        f"{entity.path!r} is outside it."
    )


_NO_ROUTE: Final = "404 page not found\n"  # as the Configuration API answers an unknown route


async def _answer(send: Send, refused: _Refused) -> None:
    plain = refused.message == _NO_ROUTE
    body = _NO_ROUTE.encode() if plain else error_body(refused.message)
    content_type = b"text/plain; charset=utf-8" if plain else b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if refused.status_code == 401:
        headers.append((b"www-authenticate", b'Bearer realm="eventgateway"'))
    await send({"type": "http.response.start", "status": refused.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AuthGuard:
    """ASGI middleware enforcing auth mode on the Configuration API; see the module docstring.

    Args:
        app: the Configuration API.
        authenticator: checks keys (the gateway's :class:`~eventgateway.auth.keyring.KeyRing`).
        claim_policy: who may claim a space: ``"open"`` (anyone) or ``"operator"``.

    .. versionadded:: 0.2.0
    """

    def __init__(self, app: Any, authenticator: Authenticator, *, claim_policy: str) -> None:
        if claim_policy not in CLAIM_POLICIES:
            raise ValueError(f"claim_policy is {claim_policy!r}: use open or operator")
        self._app = app
        self._auth = authenticator
        self._claim_policy = claim_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (kind == "http" and scope["path"] in _PUBLIC):
            await self._app(scope, receive, send)
            return
        method = scope.get("method", "GET")  # a WebSocket handshake is a GET
        try:
            principal = self._decide(method, scope["path"], scope["headers"])
        except _Refused as exc:
            logger.debug("refused %s %s: %d", method, scope["path"], exc.status_code)
            if kind == "websocket":  # none is served today; refused alike if one ever is
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _answer(send, exc)
            return
        scope.setdefault("state", {})["principal"] = principal
        token = _principal.set(principal)
        try:
            await self._app(scope, receive, send)
        finally:
            _principal.reset(token)

    def _require(self, token: str | None) -> Principal:
        if token is None:
            raise _unauthorized(_MISSING)
        if token == _MALFORMED:
            raise _unauthorized(_BAD_HEADER)
        principal = self._auth.authenticate(token)
        if principal is None:
            raise _unauthorized(_INVALID)
        return principal

    def _decide(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]]
    ) -> Principal | None:
        token = bearer_token(headers)
        parts = path.split("/")
        if parts[:3] != ["", "v1", "spaces"]:
            if token is None:
                raise _unauthorized(_MISSING_OPERATOR.format(path=path))
            principal = self._require(token)
            if not principal.is_operator:
                raise _forbidden(f"Only the operator key may use {path}.")
            return principal
        if len(parts) == 3 or parts[3:] == [""]:  # /v1/spaces (or with a trailing slash)
            return self._collection(method, token)
        space = parts[3]
        if not space:  # /v1/spaces//acme/…: no space is named "": an unknown route
            raise _Refused(_NO_ROUTE, status_code=404)
        if token is None and self._auth.space(space) is not None:
            raise _unauthorized(_MISSING_CLAIMED.format(space=space))
        principal = self._require(token)
        if principal.is_operator:
            return principal
        if principal.space != space:
            raise _Refused(
                f'Space "{space}" not found. Use a key of that space, or claim it: '
                f"eg spaces claim {space}",
                status_code=404,
            )
        keys = len(parts) > 4 and parts[4] == "keys"
        needed: KeyScope = "read" if method in _SAFE_METHODS and not keys else "admin"
        if not principal.allows(space, needed):
            raise _forbidden(f'This key lacks the "{needed}" scope in space "{space}".')
        return principal

    def _collection(self, method: str, token: str | None) -> Principal | None:
        if method == "POST" and self._claim_policy == "open":
            # Anyone may claim; a key that comes along (maybe for another gateway) is
            # neither needed nor held against the caller.
            return self._auth.authenticate(token) if token else None
        if method == "POST" and token is None:  # not "claim a space": that is what failed
            raise _unauthorized(f"Missing API key. {_OPERATOR_CLAIMS}")
        principal = self._require(token)
        if method == "POST" and not principal.is_operator:
            raise _forbidden(_OPERATOR_CLAIMS)
        return principal
