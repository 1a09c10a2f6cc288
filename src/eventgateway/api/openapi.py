"""The OpenAPI 3.1 description of the Configuration API, built in code.

Served at ``GET /openapi.json`` by ``api/config.py``. Built from small helpers so that
every resource is described the same way; the delivery log and dead letters
(``api/deliveries.py``) are described in ``api/openapi_deliveries.py``, calling a function
(``api/invoke.py``) in ``api/openapi_invoke.py``. ``tests/api``
checks that each route of both apps appears here.
"""

from __future__ import annotations

from typing import Any, Final

from eventgateway.api.openapi_deliveries import deliveries_paths, deliveries_schemas
from eventgateway.api.openapi_filters import filter_schemas
from eventgateway.api.openapi_invoke import invoke_paths, invoke_schemas
from eventgateway.api.openapi_parts import JSON, STRING, json_response, path_param, ref
from eventgateway.api.openapi_runtime import runtime_paths, runtime_schemas
from eventgateway.api.openapi_service import service_paths, service_schemas
from eventgateway.api.openapi_spaces import (
    AUTH_DESCRIPTION,
    SECURITY_SCHEMES,
    spaces_paths,
    spaces_schemas,
)
from eventgateway.model.delivery_options import (
    BACKOFFS,
    CONTENT_MODES,
    DELIVERY_MODES,
    MAX_SIGNING_SECRETS,
)
from eventgateway.model.entities import DEFAULT_RETRY_POLICY
from eventgateway.model.providers import PROVIDER_TYPES
from eventgateway.model.runtime_provider import RUNTIME_TYPES
from eventgateway.model.validate import METHODS

__all__ = ["openapi_document"]

_METADATA: Final = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Free-form labels; lists can be filtered with `metadata.<key>=<value>`.",
}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def _retry_policy() -> dict[str, Any]:
    d = DEFAULT_RETRY_POLICY
    thirty_days_s = 30 * 86_400
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "How failed async deliveries are retried; keys left out keep their "
        "defaults (about 24 h of retries). Each delay is capped at `maxDelayMs`; with "
        "`jitter` it is drawn uniformly from [0, delay]. A function's `Retry-After` (capped "
        "at `maxRetryAfterSeconds`) replaces a shorter delay.",
        "properties": {
            "maxAttempts": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": d.max_attempts,
            },
            "maxAgeSeconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": thirty_days_s,
                "default": d.max_age_s,
                "description": "Give up once the next attempt would be later than this "
                "after the event was accepted.",
            },
            "backoff": {
                "type": "string",
                "enum": list(BACKOFFS),
                "default": d.backoff,
                "description": "exponential: initial * 2^(n-1); linear: initial * n; "
                "constant: initial (n = attempts made).",
            },
            "initialDelayMs": {
                "type": "integer",
                "minimum": 0,
                "maximum": thirty_days_s * 1000,
                "default": d.initial_delay_ms,
            },
            "maxDelayMs": {
                "type": "integer",
                "minimum": 0,
                "maximum": thirty_days_s * 1000,
                "default": d.max_delay_ms,
                "description": "At least `initialDelayMs`.",
            },
            "jitter": {"type": "boolean", "default": d.jitter},
            "attemptTimeoutMs": {
                "type": "integer",
                "minimum": 1,
                "maximum": 900_000,
                "default": d.attempt_timeout_ms,
            },
            "maxRetryAfterSeconds": {
                "type": "number",
                "minimum": 0,
                "maximum": thirty_days_s,
                "default": d.max_retry_after_s,
            },
        },
    }


def _subscription_options() -> dict[str, Any]:
    return {
        "delivery": {
            "type": "string",
            "enum": list(DELIVERY_MODES),
            "default": "at-least-once",
            "description": "Async only. at-least-once: durable and retried; at-most-once: "
            "in memory, one attempt (the original's behaviour).",
        },
        "retryPolicy": ref("RetryPolicy"),
        "ordered": {
            "type": "boolean",
            "default": False,
            "description": "Async only. Deliver events with the same CloudEvents "
            "`partitionkey` one at a time, in order.",
        },
        "filter": ref("EventFilter"),
    }


def _function_options() -> dict[str, Any]:
    return {
        "signingSecrets": {
            "type": "array",
            "maxItems": MAX_SIGNING_SECRETS,
            "items": {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$"},
            "description": "Standard Webhooks secrets (`whsec_` + base64 of 24-64 bytes). "
            "Each delivery carries webhook-id, webhook-timestamp and one webhook-signature "
            "per secret; two secrets allow rotation.",
        },
        "contentMode": {
            "type": "string",
            "enum": list(CONTENT_MODES),
            "default": "structured",
            "description": "binary: send CloudEvents 1.0 events in binary mode (ce-* headers).",
        },
    }


def _schemas() -> dict[str, Any]:
    method = {"type": "string", "enum": list(METHODS)}
    cors_lists = {
        "allowedOrigins": {"type": "array", "items": STRING, "default": ["*"]},
        "allowedMethods": {
            "type": "array",
            "items": STRING,
            "default": ["HEAD", "GET", "POST"],
        },
        "allowedHeaders": {
            "type": "array",
            "items": STRING,
            "default": ["Origin", "Accept", "Content-Type"],
        },
        "allowCredentials": {"type": "boolean", "default": False},
    }
    return {
        "Error": _object(
            {
                "errors": {
                    "type": "array",
                    "items": _object({"message": STRING}, ["message"]),
                    "minItems": 1,
                }
            },
            ["errors"],
        ),
        "EventTypeInput": _object(
            {"name": STRING, "authorizerId": STRING, "metadata": _METADATA}, ["name"]
        ),
        "EventType": _object(
            {"space": STRING, "name": STRING, "authorizerId": STRING, "metadata": _METADATA},
            ["space", "name"],
        ),
        "FunctionInput": _object(
            {
                "functionId": {"type": "string", "pattern": "^[a-zA-Z0-9.\\-_]+$"},
                "type": {"type": "string", "enum": [*PROVIDER_TYPES, *RUNTIME_TYPES]},
                "provider": {
                    "type": "object",
                    "description": (
                        "Per type: http {url}; awslambda {arn, region}; awssqs {queueUrl, "
                        "region}; awskinesis {streamName, region}; awsfirehose "
                        "{deliveryStreamName, region}; AWS types also take awsAccessKeyId, "
                        "awsSecretAccessKey, awsSessionToken (both keys required in auth "
                        "mode, unless eg serve --aws-default-credentials)."
                    ),
                },
                "metadata": _METADATA,
                **_function_options(),
            },
            ["functionId", "type", "provider"],
        ),
        "Function": _object(
            {
                "space": STRING,
                "functionId": STRING,
                "type": STRING,
                "provider": {"type": "object", "additionalProperties": STRING},
                "metadata": _METADATA,
                **_function_options(),
            },
            ["space", "functionId", "type", "provider"],
        ),
        "SubscriptionInput": _object(
            {
                "type": {"type": "string", "enum": ["async", "sync"]},
                "eventType": STRING,
                "functionId": STRING,
                "path": {"type": "string", "default": "/"},
                "method": {"type": "string", "default": "POST"},
                "metadata": _METADATA,
                **_subscription_options(),
            },
            ["type", "eventType", "functionId"],
        ),
        "Subscription": _object(
            {
                "space": STRING,
                "subscriptionId": STRING,
                "type": STRING,
                "eventType": STRING,
                "functionId": STRING,
                "path": STRING,
                "method": method,
                "metadata": _METADATA,
                **_subscription_options(),
            },
            ["space", "subscriptionId", "type", "eventType", "functionId", "path", "method"],
        ),
        "RetryPolicy": _retry_policy(),
        "CORSInput": _object(
            {"method": method, "path": STRING, **cors_lists, "metadata": _METADATA},
            ["method", "path"],
        ),
        "CORS": _object(
            {
                "space": STRING,
                "corsId": STRING,
                "method": method,
                "path": STRING,
                **cors_lists,
                "metadata": _METADATA,
            },
            ["space", "corsId", "method", "path", *cors_lists],
        ),
        "EventTypeList": _object(
            {"eventTypes": {"type": "array", "items": ref("EventType")}}, ["eventTypes"]
        ),
        "FunctionList": _object(
            {"functions": {"type": "array", "items": ref("Function")}}, ["functions"]
        ),
        "SubscriptionList": _object(
            {"subscriptions": {"type": "array", "items": ref("Subscription")}},
            ["subscriptions"],
        ),
        "CORSList": _object({"cors": {"type": "array", "items": ref("CORS")}}, ["cors"]),
    }


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Invalid body or a rule refused it",
        404: "Not found",
        409: "Already exists",
        500: "Storage failure",
    }
    return {str(code): json_response("Error", texts[code]) for code in (*codes, 500)}


_SPACE_PARAM: Final = path_param(
    "space", "Space name; writes need `^[a-zA-Z0-9.\\-_]+$` and 3 to 255 characters."
)
_FILTER_PARAM: Final = {
    "name": "metadata.<key>",
    "in": "query",
    "required": False,
    "schema": STRING,
    "description": "Only entities whose metadata has this key with exactly this value "
    "(several filters are ANDed).",
}


def _resource(
    tag: str, schema: str, id_name: str, id_description: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    collection = {
        "parameters": [_SPACE_PARAM],
        "get": {
            "tags": [tag],
            "operationId": f"list{schema}",
            "parameters": [_FILTER_PARAM],
            "responses": {"200": json_response(f"{schema}List", "The list, IDs descending")},
        },
        "post": {
            "tags": [tag],
            "operationId": f"create{schema}",
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ref(f"{schema}Input")}},
            },
            "responses": {"201": json_response(schema, "Created"), **_errors(400, 409)},
        },
    }
    item = {
        "parameters": [_SPACE_PARAM, path_param(id_name, id_description)],
        "get": {
            "tags": [tag],
            "operationId": f"get{schema}",
            "responses": {"200": json_response(schema, "Found"), **_errors(404)},
        },
        "put": {
            "tags": [tag],
            "operationId": f"update{schema}",
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ref(f"{schema}Input")}},
            },
            "responses": {"200": json_response(schema, "Updated"), **_errors(400, 404)},
        },
        "delete": {
            "tags": [tag],
            "operationId": f"delete{schema}",
            "responses": {"204": {"description": "Deleted"}, **_errors(400, 404)},
        },
    }
    return collection, item


def openapi_document() -> dict[str, Any]:
    """The Configuration API as an OpenAPI 3.1 document (a fresh dict on every call)."""
    paths: dict[str, Any] = service_paths()
    for tag, segment, schema, id_name, id_description in (
        ("Event types", "eventtypes", "EventType", "name", "Event type name"),
        ("Functions", "functions", "Function", "id", "Function ID"),
        ("Subscriptions", "subscriptions", "Subscription", "id", "Subscription ID"),
        (
            "CORS",
            "cors",
            "CORS",
            "id",
            "CORS ID, percent-encoded as returned (`GET%2Fusers`); read from the raw path",
        ),
    ):
        collection, item = _resource(tag, schema, id_name, id_description)
        paths[f"/v1/spaces/{{space}}/{segment}"] = collection
        paths[f"/v1/spaces/{{space}}/{segment}/{{{id_name}}}"] = item
    paths.update(deliveries_paths())
    paths.update(invoke_paths())
    paths.update(runtime_paths())
    paths.update(spaces_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eventgateway Configuration API",
            "version": "1",
            "description": "Wire-compatible with the Serverless Event Gateway 0.9.1 "
            'Configuration API. Errors are `{"errors":[{"message": …}]}`.' + AUTH_DESCRIPTION,
        },
        "paths": paths,
        "security": [{}, {"bearer": []}],  # open with --no-auth; a key in auth mode
        "components": {
            "schemas": {
                **_schemas(),
                **filter_schemas(),
                **deliveries_schemas(),
                **invoke_schemas(),
                **runtime_schemas(),
                **service_schemas(),
                **spaces_schemas(),
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
