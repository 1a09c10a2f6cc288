"""The OpenAPI description of the delivery log and dead letters (``api/deliveries.py``).

Kept apart from ``api/openapi.py``, which merges :func:`deliveries_paths` and
:func:`deliveries_schemas` into the document. The response schemas describe the structs
of ``queue/log_views.py`` as they serialise: camelCase names, every field always present
(``null`` where a value may be missing), times as RFC 3339 UTC strings.
"""

from __future__ import annotations

from typing import Any, Final

from eventgateway.api.openapi_parts import JSON, STRING, json_response, path_param, query_param, ref
from eventgateway.queue.log_views import STATES
from eventgateway.queue.replay import MAX_REPLAY_EVENTS

__all__ = ["deliveries_paths", "deliveries_schemas"]

_TAG: Final = "Delivery log"
_MAX_LIMIT: Final = 1000
_INTEGER: Final = {"type": "integer"}
_TIME: Final = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."}
_STATE: Final = {"type": "string", "enum": list(STATES)}
_QUERY_TIME: Final = (
    "RFC 3339 (`2026-11-26T18:00:00Z`; without an offset, UTC) "
    "or Unix seconds (`1795716000`, fractions allowed)."
)
_WINDOW_TIME: Final = _QUERY_TIME[:-1] + ", or a duration back from now (`30s`, `10m`, `2h`)."
_NUMBER_TIME: Final = "A JSON number is Unix seconds."
_BODY_TIME: Final = f"{_QUERY_TIME} {_NUMBER_TIME}"
_BODY_TIME_TYPE: Final = {"type": ["string", "number"]}


def _struct(properties: dict[str, Any], description: str) -> dict[str, Any]:
    """A response object: every property is always present."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
    }


def _nullable(kind: str, description: str) -> dict[str, Any]:
    return {"type": [kind, "null"], "description": description}


def deliveries_schemas() -> dict[str, Any]:
    """Component schemas for the delivery log and dead letters."""
    event = {
        "type": "object",
        "description": "The accepted event exactly as it is delivered (structured JSON).",
    }
    return {
        "AttemptView": _struct(
            {
                "attempt": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Position in this delivery's log (redrive does not reset it).",
                },
                "startedAt": _TIME,
                "durationMs": {"type": "number", "minimum": 0},
                "outcome": {"type": "string", "enum": ["delivered", "failed", "skipped"]},
                "status": _nullable("integer", "The function's HTTP status, if it answered."),
                "error": {"type": "string", "description": "Empty when delivered."},
            },
            "One attempt to deliver, as recorded when it was settled.",
        ),
        "DeliveryView": _struct(
            {
                "deliveryId": STRING,
                "subscriptionId": STRING,
                "functionId": STRING,
                "state": _STATE,
                "attempts": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Attempts counted against the retry policy (redrive resets it).",
                },
                "nextAttemptAt": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "null when settled, in flight, or held by ordering.",
                },
                "lastStatus": _nullable("integer", "HTTP status of the last attempt."),
                "lastError": STRING,
                "deadReason": {"type": "string", "description": "Empty unless dead."},
                "attemptLog": {"type": "array", "items": ref("AttemptView")},
                "replayOf": _nullable(
                    "string",
                    "Set on a delivery made by a replay: the ID of the delivery it repeats "
                    "(null on deliveries made when the event was accepted).",
                ),
            },
            "One delivery of an event to one subscription, with its attempt log.",
        ),
        "EventView": _struct(
            {
                "id": STRING,
                "source": STRING,
                "type": STRING,
                "specversion": STRING,
                "receivedAt": _TIME,
                "state": {
                    **_STATE,
                    "description": "The worst of the deliveries' states in this space: "
                    "dead > retrying > pending > delivered.",
                },
                "event": event,
                "deliveries": {"type": "array", "items": ref("DeliveryView")},
            },
            "An accepted event with its deliveries in one space.",
        ),
        "EventSummary": _struct(
            {
                "seq": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Acceptance order; pass the last one seen as `before` "
                    "to get the next page.",
                },
                "id": STRING,
                "source": STRING,
                "type": STRING,
                "receivedAt": _TIME,
                "state": {
                    **_STATE,
                    "description": "The worst state of its deliveries in this space (of "
                    "that subscription's, with `subscriptionId`).",
                },
                "deliveries": {"type": "integer", "minimum": 1},
            },
            "One line of the recent-events listing.",
        ),
        "EventList": _struct(
            {"events": {"type": "array", "items": ref("EventSummary")}},
            "Recent events, newest first.",
        ),
        "DeadLetter": _struct(
            {
                "deadLetterId": {"type": "string", "description": "The delivery's ID."},
                "subscriptionId": STRING,
                "functionId": STRING,
                "eventId": STRING,
                "reason": STRING,
                "attempts": _INTEGER,
                "lastStatus": _nullable("integer", "HTTP status of the last attempt."),
                "responseExcerpt": {
                    "type": "string",
                    "description": "The start of the function's last response body.",
                },
                "deadAt": _TIME,
                "event": event,
            },
            "A delivery given up on, kept for inspection and redrive.",
        ),
        "DeadLetterList": _struct(
            {"deadLetters": {"type": "array", "items": ref("DeadLetter")}},
            "Dead letters, most recently dead first.",
        ),
        "RedriveInput": {
            "type": "object",
            "additionalProperties": False,
            "description": 'Name what to redrive: `{"ids": [...]}`, a filter (subscriptionId, '
            'since, until) or `{"all": true}`; given together they combine with AND.',
            "properties": {
                "ids": {"type": "array", "items": STRING, "description": "Dead letter IDs."},
                "subscriptionId": STRING,
                "since": {**_BODY_TIME_TYPE, "description": f"Dead at or after. {_BODY_TIME}"},
                "until": {**_BODY_TIME_TYPE, "description": f"Dead before. {_BODY_TIME}"},
                "all": {"type": "boolean", "default": False},
            },
        },
        "RedriveResult": _struct(
            {"redriven": {"type": "integer", "minimum": 0}},
            "How many dead letters are pending again, due now, with attempts reset.",
        ),
        "ReplayInput": {
            "type": "object",
            "additionalProperties": False,
            "description": 'Name what to replay: `{"ids": [...]}`, or a window of received '
            "time from `since` (required: nothing replays every event by accident) to "
            "`until`; `subscriptionId` narrows either. At most "
            f"{MAX_REPLAY_EVENTS} events per call.",
            "properties": {
                "ids": {
                    "type": "array",
                    "items": STRING,
                    "maxItems": MAX_REPLAY_EVENTS,
                    "description": "Event IDs (CloudEvents `id`); not together with a window.",
                },
                "subscriptionId": {
                    "type": "string",
                    "description": "Only to this subscription (and only events delivered to it).",
                },
                "since": {
                    **_BODY_TIME_TYPE,
                    "description": f"Received at or after. {_WINDOW_TIME} {_NUMBER_TIME}",
                },
                "until": {
                    **_BODY_TIME_TYPE,
                    "description": f"Received before. {_WINDOW_TIME} {_NUMBER_TIME}",
                },
            },
        },
        "ReplaySkipped": _struct(
            {
                "deletedSubscription": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Subscriptions removed since (or no longer async).",
                },
                "atMostOnce": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Subscriptions that are at-most-once now.",
                },
                "filtered": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Subscriptions whose filter now turns the event away.",
                },
            },
            "(event, subscription) pairs not delivered again, by reason.",
        ),
        "ReplayResult": _struct(
            {
                "replayed": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "New deliveries made, due now.",
                },
                "events": {"type": "integer", "minimum": 0, "description": "Events selected."},
                "skipped": ref("ReplaySkipped"),
            },
            "What a replay did.",
        ),
        "PurgeResult": _struct(
            {"purged": {"type": "integer", "minimum": 0}}, "How many dead letters were deleted."
        ),
    }


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "A query parameter or the body is not valid",
        404: "Not found",
        429: "The delivery queue has no room; nothing was done (see Retry-After)",
    }
    errors = {str(code): json_response("Error", texts[code]) for code in codes}
    return {**errors, "500": json_response("Error", "Storage failure")}


_SPACE: Final = path_param(
    "space", "Space name; only deliveries of this space are shown or changed."
)
_LIMIT: Final = query_param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": _MAX_LIMIT, "default": 100},
    "At most this many.",
)
_SUBSCRIPTION: Final = query_param(
    "subscriptionId", STRING, "Only deliveries to this subscription."
)
_SINCE: Final = query_param("since", STRING, f"Dead at or after this time. {_QUERY_TIME}")
_UNTIL: Final = query_param("until", STRING, f"Dead before this time. {_QUERY_TIME}")


def deliveries_paths() -> dict[str, Any]:
    """Path items for every route of ``api/deliveries.py``."""
    base = "/v1/spaces/{space}"
    letter_id = path_param("id", "Dead letter ID (`deadLetterId`).")
    return {
        f"{base}/events": {
            "parameters": [_SPACE],
            "get": {
                "tags": [_TAG],
                "operationId": "listEvents",
                "parameters": [
                    query_param("state", _STATE, "Only events in this state."),
                    {
                        **_SUBSCRIPTION,
                        "description": "Only events with a delivery to this subscription; "
                        "state and delivery count are then that subscription's.",
                    },
                    _LIMIT,
                    query_param(
                        "before",
                        {"type": "integer", "minimum": 0},
                        "Paging cursor: only events with a `seq` below this one (pass the "
                        "last `seq` of the previous page).",
                    ),
                ],
                "responses": {"200": json_response("EventList", "Newest first"), **_errors(400)},
            },
        },
        f"{base}/events/replay": {
            "parameters": [_SPACE],
            "post": {
                "tags": [_TAG],
                "operationId": "replayEvents",
                "description": "Deliver stored events again: one new delivery (attempt 1, "
                "due now) per subscription each was delivered to that still exists, beside "
                "the old ones. All or nothing: 404 names IDs that select no event, 429 when "
                "the queue has no room. Needs an admin key.",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("ReplayInput")}},
                },
                "responses": {
                    "200": json_response("ReplayResult", "Replayed"),
                    **_errors(400, 404, 429),
                },
            },
        },
        f"{base}/events/{{id}}": {
            "parameters": [_SPACE, path_param("id", "CloudEvents `id` of an accepted event.")],
            "get": {
                "tags": [_TAG],
                "operationId": "getEvent",
                "description": "The newest accepted event with this ID that has deliveries "
                "in the space, with every delivery and attempt.",
                "responses": {"200": json_response("EventView", "Found"), **_errors(404)},
            },
        },
        f"{base}/deadletters": {
            "parameters": [_SPACE],
            "get": {
                "tags": [_TAG],
                "operationId": "listDeadLetters",
                "parameters": [_SUBSCRIPTION, _SINCE, _UNTIL, _LIMIT],
                "responses": {
                    "200": json_response("DeadLetterList", "Most recently dead first"),
                    **_errors(400),
                },
            },
            "delete": {
                "tags": [_TAG],
                "operationId": "purgeDeadLetters",
                "description": "Delete the dead letters the filters select (combined with "
                "AND); with no filter, `all=true` is required. An event left without "
                "deliveries is deleted too.",
                "parameters": [
                    _SUBSCRIPTION,
                    _SINCE,
                    _UNTIL,
                    query_param("all", {"type": "string", "enum": ["true"]}, "Purge every one."),
                ],
                "responses": {"200": json_response("PurgeResult", "Purged"), **_errors(400)},
            },
        },
        f"{base}/deadletters/redrive": {
            "parameters": [_SPACE],
            "post": {
                "tags": [_TAG],
                "operationId": "redriveDeadLetters",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("RedriveInput")}},
                },
                "responses": {"200": json_response("RedriveResult", "Redriven"), **_errors(400)},
            },
        },
        f"{base}/deadletters/{{id}}": {
            "parameters": [_SPACE, letter_id],
            "get": {
                "tags": [_TAG],
                "operationId": "getDeadLetter",
                "responses": {"200": json_response("DeadLetter", "Found"), **_errors(404)},
            },
            "delete": {
                "tags": [_TAG],
                "operationId": "purgeDeadLetter",
                "responses": {"204": {"description": "Purged"}, **_errors(404)},
            },
        },
    }
