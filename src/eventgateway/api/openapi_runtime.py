"""The OpenAPI description of code bundles and function logs (``api/runtime.py``).

Kept apart from ``api/openapi.py``, which merges :func:`runtime_paths` and
:func:`runtime_schemas` into the document. ``LogLine`` is shared with the invoke result.
"""

from __future__ import annotations

from typing import Any, Final

from eventgateway.api.openapi_parts import STRING, json_response, path_param, query_param, ref

__all__ = ["runtime_paths", "runtime_schemas"]

_SINCE: Final = query_param(
    "since",
    STRING,
    "Only lines from this time on: RFC 3339, Unix seconds, or a duration back from now "
    "(`30s`, `10m`, `2h`, `1d`, `1h30m`).",
)
_LIMIT: Final = query_param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 10_000},
    "At most this many lines, the newest ones [default: 1000].",
)
_FILTER: Final = query_param("filter", STRING, "Only lines whose message holds this text.")


def runtime_schemas() -> dict[str, Any]:
    """Component schemas of bundles and log lines."""
    return {
        "Bundle": {
            "type": "object",
            "properties": {
                "bundleId": {
                    **STRING,
                    "description": "The zip's content address; name it in a function's "
                    "`provider.bundle`.",
                },
                "size": {"type": "integer", "minimum": 0, "description": "Bytes."},
            },
            "required": ["bundleId", "size"],
        },
        "LogLine": {
            "type": "object",
            "properties": {
                "timestamp": {"type": "string", "format": "date-time"},
                "requestId": STRING,
                "stream": {"type": "string", "enum": ["stdout", "stderr", "system"]},
                "message": STRING,
            },
            "required": ["timestamp", "requestId", "stream", "message"],
        },
        "LogLines": {
            "type": "object",
            "properties": {"logs": {"type": "array", "items": ref("LogLine")}},
            "required": ["logs"],
        },
    }


def runtime_paths() -> dict[str, Any]:
    """The path items of the bundles and logs routes."""
    space = path_param("space", "Space name.")
    function = path_param("functionId", "Function ID")
    not_found = json_response("Error", "The space has no such function, and no stored lines of one")
    return {
        "/v1/spaces/{space}/bundles": {
            "parameters": [space],
            "post": {
                "tags": ["Functions"],
                "operationId": "uploadBundle",
                "description": "Upload a function's code as a zip. Bundles are "
                "content-addressed and shared by every space: uploading the same zip again "
                "is a 200 with the same id.",
                "requestBody": {
                    "required": True,
                    "content": {"application/zip": {"schema": {**STRING, "format": "binary"}}},
                },
                "responses": {
                    "201": json_response("Bundle", "Stored"),
                    "200": json_response("Bundle", "That zip was stored before"),
                    "400": json_response("Error", "The body is not a usable zip"),
                    "413": json_response("Error", "The zip is over the size limit"),
                    "500": json_response("Error", "Storage failure"),
                },
            },
        },
        "/v1/spaces/{space}/bundles/{bundleId}": {
            "parameters": [space, path_param("bundleId", "The bundle's id")],
            "get": {
                "tags": ["Functions"],
                "operationId": "getBundle",
                "description": "Whether a bundle is stored (HEAD answers the same, bodiless).",
                "responses": {
                    "200": json_response("Bundle", "Stored"),
                    "404": json_response("Error", "No such bundle"),
                },
            },
        },
        "/v1/spaces/{space}/functions/{functionId}/logs": {
            "parameters": [space, function],
            "get": {
                "tags": ["Functions"],
                "operationId": "getFunctionLogs",
                "description": "The function's log lines, Lambda-style (START, the "
                "handler's output, END, REPORT), oldest first.",
                "parameters": [_SINCE, _LIMIT, _FILTER],
                "responses": {
                    "200": json_response("LogLines", "The lines"),
                    "400": json_response("Error", "A parameter is not valid"),
                    "404": not_found,
                },
            },
        },
        "/v1/spaces/{space}/functions/{functionId}/logs/stream": {
            "parameters": [space, function],
            "get": {
                "tags": ["Functions"],
                "operationId": "streamFunctionLogs",
                "description": "Server-Sent Events: the lines since `since` if given, then "
                "every new line as `data: <LogLine>`, and `: keep-alive` after 15 s without "
                "one, until the client goes away.",
                "parameters": [_SINCE, _LIMIT, _FILTER],
                "responses": {
                    "200": {
                        "description": "The stream",
                        "content": {"text/event-stream": {"schema": STRING}},
                    },
                    "400": json_response("Error", "A parameter is not valid"),
                    "404": not_found,
                },
            },
        },
    }
