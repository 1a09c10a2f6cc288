"""Deterministic identifiers of subscriptions and CORS configurations.

The original gateway derives both IDs from the entity's fields, and the JS SDK's own tests
pin the results, so they must be reproduced byte for byte (contract §3.4, §3.5).
"""

from __future__ import annotations

import base64
from urllib.parse import quote

__all__ = ["cors_id", "path_escape", "subscription_id"]

# Go's url.PathEscape leaves the unreserved characters and the sub-delimiters that are
# legal inside one path segment unescaped; "/", ";", ",", "?" and everything else are
# percent-encoded with upper-case hex. `quote` always keeps ASCII letters, digits and
# "_.-~", so only the extra segment-safe characters need naming.
_PATH_SEGMENT_SAFE = "$&+:=@"


def path_escape(path: str) -> str:
    """Escape ``path`` exactly as Go's ``url.PathEscape`` does (``/`` → ``%2F``)."""
    return quote(path, safe=_PATH_SEGMENT_SAFE)


def subscription_id(*, type: str, event_type: str, function_id: str, path: str, method: str) -> str:
    """The ID of a subscription (unpadded URL-safe base64 of its identifying fields).

    Async IDs include the function, so several functions may subscribe to one route;
    sync IDs leave it out, so a second sync subscriber of a route collides (409).

    Args:
        type: ``"async"`` or ``"sync"``.
        event_type: the subscribed event type.
        function_id: the subscribed function (ignored for sync subscriptions).
        path: the normalised path (leading ``/``).
        method: the normalised, upper-case method.
    """
    escaped = path_escape(path)
    if type == "sync":
        raw = f"sync,{event_type},{escaped},{method}"
    else:
        raw = f"{type},{event_type},{function_id},{escaped},{method}"
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def cors_id(method: str, path: str) -> str:
    """The ID of a CORS configuration: ``method`` + PathEscape(``path``), e.g. ``GET%2Ftest``."""
    return method + path_escape(path)
