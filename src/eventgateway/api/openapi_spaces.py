"""The OpenAPI description of spaces and API keys (``api/spaces.py``) and of auth mode.

Kept apart from ``api/openapi.py``, which merges :func:`spaces_paths`,
:func:`spaces_schemas` and :data:`SECURITY_SCHEMES` into the document.
"""

from __future__ import annotations

from typing import Any, Final

from eventgateway.api.openapi_parts import JSON, path_param, ref

__all__ = ["AUTH_DESCRIPTION", "SECURITY_SCHEMES", "spaces_paths", "spaces_schemas"]

_TIME: Final = {"type": "string", "format": "date-time"}
_SCOPE: Final = {"type": "string", "enum": ["admin", "emit", "read"]}

AUTH_DESCRIPTION: Final = (
    " In auth mode (the default of `eg serve`) every route but `/v1/status` and "
    "`/openapi.json` needs `Authorization: Bearer <key>`: a key of the space in the path "
    "(`read` for GET, `admin` for writes and keys) or the operator key. 401: no key or an "
    "unknown, revoked or expired one; 403: a key without the scope; 404: a key of another "
    "space. See docs/security.md."
)
SECURITY_SCHEMES: Final = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A space key (`egk_…`) or the operator key.",
    }
}


def _json(schema: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": ref(schema)}},
    }
    if secret:
        response["headers"] = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}}
    return response


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Invalid body, or a rule refused it",
        401: "No key, or an unknown, revoked or expired one",
        403: "The key lacks the scope (or the claim policy needs the operator key)",
        404: "No such space or key (also for a key of another space)",
        409: "Already claimed, or the name is kept for the operator",
    }
    return {str(code): _json("Error", texts[code]) for code in codes}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


def spaces_schemas() -> dict[str, Any]:
    """Component schemas of spaces and keys."""
    space = {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9.\\-_]{3,}$"},
        "emitRequiresKey": {
            "type": "boolean",
            "description": "true: emits need a key with the `emit` scope; false (default): "
            "public ingest, e.g. for webhooks.",
        },
        "createdAt": _TIME,
    }
    key = {
        "keyId": {"type": "string", "description": "Public id of the key (16 hex digits)."},
        "scopes": {"type": "array", "items": _SCOPE},
        "expiresAt": {"type": ["string", "null"], "format": "date-time"},
        "createdAt": _TIME,
    }
    api_key = {
        "type": "string",
        "description": "The secret key, `egk_<keyId>_<secret>`: shown only in this answer, "
        "stored as a hash.",
    }
    return {
        "Space": {"type": "object", "properties": space, "required": list(space)},
        "SpaceList": {
            "type": "object",
            "properties": {"spaces": {"type": "array", "items": ref("Space")}},
            "required": ["spaces"],
        },
        "SpaceClaim": {
            "type": "object",
            "properties": {"name": space["name"], "emitRequiresKey": space["emitRequiresKey"]},
            "required": ["name"],
        },
        "SpaceUpdate": {
            "type": "object",
            "properties": {"emitRequiresKey": space["emitRequiresKey"]},
            "required": ["emitRequiresKey"],
        },
        "ClaimedSpace": {
            "type": "object",
            "properties": {
                "apiKey": api_key,
                **space,
                "keyId": key["keyId"],
                "scopes": key["scopes"],
            },
            "required": ["name", "apiKey", "keyId", "scopes", "emitRequiresKey", "createdAt"],
        },
        "ApiKey": {
            "type": "object",
            "properties": {**key, "expired": {"type": "boolean"}},
            "required": [*key, "expired"],
        },
        "ApiKeyList": {
            "type": "object",
            "properties": {"keys": {"type": "array", "items": ref("ApiKey")}},
            "required": ["keys"],
        },
        "ApiKeyInput": {
            "type": "object",
            "properties": {
                "scopes": {"type": "array", "items": _SCOPE, "minItems": 1},
                "expiresAt": {
                    "type": ["string", "number", "null"],
                    "description": "RFC 3339 or Unix seconds; in the future. Absent: never.",
                },
            },
            "required": ["scopes"],
        },
        "IssuedApiKey": {
            "type": "object",
            "properties": {"apiKey": api_key, **key},
            "required": ["keyId", "apiKey", "scopes", "expiresAt", "createdAt"],
        },
    }


def spaces_paths() -> dict[str, Any]:
    """The paths of spaces and keys."""
    space = path_param("space", "Space name")
    tag = ["Spaces and keys"]
    return {
        "/v1/spaces": {
            "get": {
                "tags": tag,
                "operationId": "listSpaces",
                "description": "The operator key sees every claimed space; a space key its own.",
                "responses": {"200": _json("SpaceList", "Claimed spaces"), **_errors(401)},
            },
            "post": {
                "tags": tag,
                "operationId": "claimSpace",
                "description": "Claim a space; its first key (all scopes) is in the answer, "
                "once. Needs no key under claim policy `open`, the operator key under "
                "`operator`.",
                "requestBody": _body("SpaceClaim"),
                "responses": {
                    "201": _json("ClaimedSpace", "Claimed", secret=True),
                    **_errors(400, 401, 403, 409),
                },
            },
        },
        "/v1/spaces/{space}": {
            "parameters": [space],
            "get": {
                "tags": tag,
                "operationId": "getSpace",
                "responses": {"200": _json("Space", "The space"), **_errors(401, 403, 404)},
            },
            "patch": {
                "tags": tag,
                "operationId": "updateSpace",
                "requestBody": _body("SpaceUpdate"),
                "responses": {"200": _json("Space", "Updated"), **_errors(400, 401, 403, 404)},
            },
            "delete": {
                "tags": tag,
                "operationId": "deleteSpace",
                "description": "Only an empty space (no event types, functions, subscriptions "
                "or CORS) that holds no dead letters and no deliveries still being made (400 "
                "naming what is left); its keys stop working at once, its delivery history "
                "and function logs are deleted, and the name stays kept for the operator.",
                "responses": {
                    "204": {"description": "Deleted"},
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/v1/spaces/{space}/keys": {
            "parameters": [space],
            "get": {
                "tags": tag,
                "operationId": "listKeys",
                "responses": {
                    "200": _json("ApiKeyList", "Keys, oldest first, without secrets"),
                    **_errors(401, 403, 404),
                },
            },
            "post": {
                "tags": tag,
                "operationId": "createKey",
                "requestBody": _body("ApiKeyInput"),
                "responses": {
                    "201": _json("IssuedApiKey", "Created; the secret is shown once", secret=True),
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/v1/spaces/{space}/keys/{keyId}": {
            "parameters": [space, path_param("keyId", "Key id")],
            "delete": {
                "tags": tag,
                "operationId": "revokeKey",
                "description": "Refused (400) for the space's last unexpired admin key.",
                "responses": {
                    "204": {"description": "Revoked, from the next request on"},
                    **_errors(400, 401, 403, 404),
                },
            },
        },
    }
