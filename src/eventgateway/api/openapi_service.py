"""The OpenAPI description of the service routes: status, readiness and metrics.

Kept apart from ``api/openapi.py``, which merges :func:`service_paths` and
:func:`service_schemas` into the document.
"""

from __future__ import annotations

from typing import Any

from eventgateway.api.openapi_parts import STRING, json_response

__all__ = ["service_paths", "service_schemas"]


def service_schemas() -> dict[str, Any]:
    """Component schemas of the service routes."""
    return {
        "Readiness": {
            "type": "object",
            "properties": {
                "ready": {"type": "boolean"},
                "reasons": {"type": "array", "items": STRING},
            },
            "required": ["ready", "reasons"],
        }
    }


def service_paths() -> dict[str, Any]:
    """The path items of ``/v1/status``, ``/v1/ready`` and ``/v1/metrics``."""
    return {
        "/v1/status": {
            "get": {
                "operationId": "status",
                "description": "The liveness probe: the process answers.",
                "responses": {"200": {"description": "Alive (empty body)"}},
            }
        },
        "/v1/ready": {
            "get": {
                "operationId": "ready",
                "description": "The readiness probe: 503 while the instance drains, a NATS "
                "connection it needs is down, or its delivery worker is not linked.",
                "responses": {
                    "200": json_response("Readiness", "Ready"),
                    "503": json_response("Readiness", "Not ready; `reasons` says why"),
                },
            }
        },
        "/v1/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": STRING}},
                    }
                },
            }
        },
    }
