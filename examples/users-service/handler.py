"""A small Users HTTP API served through the gateway's sync subscriptions.

Each function gets the `http.request` event: `event["data"]` holds `method`, `path`,
`params` (the path's `:id`), `query`, `headers` and `body`. The returned
`{statusCode, headers, body}` becomes the HTTP response.

One function serves all three routes, so the users live in one place: the memory of its
one warm worker (`concurrency: 1`). Enough for a demo, not a database.
"""

import json

USERS = {"1": {"id": "1", "username": "ada", "email": "ada@example.com"}}


def _reply(status, payload=None):
    headers = {"Content-Type": "application/json"}
    body = "" if payload is None else json.dumps(payload)
    return {"statusCode": status, "headers": headers, "body": body}


def get_user(event, context):
    user_id = event["data"]["params"]["id"]
    user = USERS.get(user_id)
    if user is None:
        return _reply(404, {"error": f"no user {user_id}"})
    return _reply(200, user)


def create_user(event, context):
    body = event["data"].get("body")
    if isinstance(body, str):  # a body sent without a JSON content type
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if not isinstance(body, dict) or not body.get("username"):
        return _reply(400, {"error": "send a JSON object with a username"})
    user_id = str(max((int(key) for key in USERS), default=0) + 1)
    user = {"id": user_id, **body}
    USERS[user_id] = user
    print("Created user", user_id)
    return _reply(201, user)


def delete_user(event, context):
    user_id = event["data"]["params"]["id"]
    if USERS.pop(user_id, None) is None:
        return _reply(404, {"error": f"no user {user_id}"})
    return _reply(204)


_ROUTES = {"GET": get_user, "POST": create_user, "DELETE": delete_user}


def users(event, context):
    """The function behind GET /users/:id, POST /users and DELETE /users/:id."""
    route = _ROUTES.get(event["data"]["method"])
    if route is None:
        return _reply(405, {"error": "method not allowed"})
    return route(event, context)
