"""The OpenAPI description of ``POST …/functions/{functionId}/invoke`` (``api/invoke.py``).

Kept apart from ``api/openapi.py``, which merges :func:`invoke_paths` and
:func:`invoke_schemas` into the document. Every response member is always present.
"""

from __future__ import annotations

from typing import Any, Final

from eventgateway.api.openapi_parts import JSON, STRING, json_response, path_param, ref

__all__ = ["invoke_paths", "invoke_schemas"]

# api/invoke.py's DEFAULT_EVENT_TYPE and DEFAULT_SOURCE (that module imports the OpenAPI
# document through api/config.py, so this one cannot import it; tests/api compares them).
_DEFAULT_EVENT_TYPE: Final = "invoke"
_DEFAULT_SOURCE: Final = "/eventgateway/invoke"


def invoke_schemas() -> dict[str, Any]:
    """Component schemas of the invoke request and response."""
    response = {
        "ok": {
            "type": "boolean",
            "description": "false when no answer came (a handler that raised, crashed or "
            "timed out; a network error) or an HTTP function answered 500.",
        },
        "requestId": {
            "type": ["string", "null"],
            "description": "The invocation's id in the function's logs (python/nodejs).",
        },
        "eventId": {**STRING, "description": "The `id` of the event delivered."},
        "eventType": {**STRING, "description": "The `type` of the event delivered."},
        "status": {
            "type": ["integer", "null"],
            "description": "The HTTP status an `http` function answered with.",
        },
        "result": {"description": "The answer as JSON, or its text when it is not JSON."},
        "error": {
            "type": ["object", "null"],
            "description": 'Lambda\'s `{"errorType", "errorMessage", "stackTrace"}` for a '
            'failed python/nodejs handler, `{"message"}` otherwise; null when ok.',
        },
        "durationMs": {"type": "number", "minimum": 0},
        "logs": {
            "type": "array",
            "items": ref("LogLine"),
            "description": "The invocation's log lines, START to REPORT (python/nodejs).",
        },
    }
    return {
        "InvokeInput": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "event": {
                    **STRING,
                    "minLength": 1,
                    "description": "The event type [default: the event type of the "
                    f"function's first subscription, else `{_DEFAULT_EVENT_TYPE}`].",
                },
                "data": {"description": "The event's data, any JSON [default: none]."},
                "source": {
                    **STRING,
                    "minLength": 1,
                    "description": f"The event's source [default: `{_DEFAULT_SOURCE}`].",
                },
            },
        },
        "InvokeResult": {
            "type": "object",
            "properties": response,
            "required": list(response),
        },
    }


def invoke_paths() -> dict[str, Any]:
    """The path item of the invoke route."""
    return {
        "/v1/spaces/{space}/functions/{functionId}/invoke": {
            "parameters": [
                path_param("space", "Space name."),
                path_param("functionId", "Function ID"),
            ],
            "post": {
                "tags": ["Functions"],
                "operationId": "invokeFunction",
                "description": "Call the function once with a CloudEvents 1.0 event built "
                "from the body, and wait for its answer: no authorizer, no queue, no retry. "
                "A failed invocation is still a 200, with `ok: false`.",
                "requestBody": {
                    "required": False,
                    "content": {JSON: {"schema": ref("InvokeInput")}},
                },
                "responses": {
                    "200": json_response("InvokeResult", "The function was called"),
                    "400": json_response("Error", "The body is not valid"),
                    "404": json_response("Error", "No such function"),
                    "500": json_response("Error", "Storage failure"),
                },
            },
        }
    }
