"""Pieces every part of the OpenAPI document is built from (pure data, no I/O)."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["JSON", "STRING", "json_response", "path_param", "query_param", "ref"]

JSON: Final = "application/json"
STRING: Final = {"type": "string"}


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: str, description: str) -> dict[str, Any]:
    """A response whose JSON body is the component schema ``schema``."""
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def path_param(name: str, description: str) -> dict[str, Any]:
    """A required string parameter in the path."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": STRING,
        "description": description,
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }
