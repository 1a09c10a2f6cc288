"""The OpenAPI schema of a subscription's ``filter`` (pure data, no I/O).

Nested patterns are described as plain objects rather than by a recursive reference:
generators (schemathesis, client code generators) handle that better, and the gateway
checks the whole pattern anyway, answering 400 with the field path.
"""

from __future__ import annotations

from typing import Any, Final

from eventgateway.routing.filters import MAX_DEPTH, MAX_JSON_BYTES, MAX_VALUES

__all__ = ["filter_schemas"]

_SCALAR: Final = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
_STRING: Final = {"type": "string"}


def _operator() -> dict[str, Any]:
    scalars = {"anyOf": _SCALAR}
    properties: dict[str, Any] = {
        "prefix": _STRING,
        "suffix": _STRING,
        "equals-ignore-case": _STRING,
        "wildcard": {**_STRING, "description": "`*` matches any text; `\\*` and `\\\\` escape."},
        "exists": {"type": "boolean"},
        "numeric": {
            "type": "array",
            "minItems": 2,
            "maxItems": 4,
            "items": {"anyOf": [{"enum": ["<", "<=", "=", ">=", ">"]}, {"type": "number"}]},
            "description": 'Operator/number pairs, e.g. `[">", 0, "<=", 5]`.',
        },
        "anything-but": {
            "anyOf": [
                *_SCALAR,
                {"type": "array", "minItems": 1, "items": scalars},
                {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "properties": {
                        name: _STRING
                        for name in ("prefix", "suffix", "equals-ignore-case", "wildcard")
                    },
                    "additionalProperties": False,
                },
            ]
        },
    }
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": properties,
        "additionalProperties": False,
    }


def filter_schemas() -> dict[str, Any]:
    """Component schemas: ``EventFilter``."""
    values = {
        "type": "array",
        "minItems": 1,
        "items": {"anyOf": [*_SCALAR, _operator()]},
        "description": "Allowed values: any one may match.",
    }
    return {
        "EventFilter": {
            "type": "object",
            "minProperties": 1,
            "description": "Async only. An EventBridge-style event pattern (docs/filters.md): "
            "only events it matches are delivered. Keys are CloudEvents 1.0 attribute names "
            "(`source`, `subject`, `type`, `id`, extension attributes) and `data`; each "
            "value is a list of allowed values (OR) or a nested object; all keys must "
            "match (AND); `$or` takes a list of patterns. An array in the event matches "
            f"when any element does. Limits: {MAX_DEPTH} levels, {MAX_VALUES} values, "
            f"{MAX_JSON_BYTES // 1024} KiB.",
            "properties": {"$or": {"type": "array", "minItems": 1, "items": {"type": "object"}}},
            "additionalProperties": {"anyOf": [values, {"type": "object", "minProperties": 1}]},
        }
    }
