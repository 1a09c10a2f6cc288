"""The name rule of spaces, function ids and event types (the original's validator).

Outside ``eventgateway.model`` so the SDK can check a space name without importing the
entity model (~30 ms).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_NAME_CHARS", "NAME_RE", "is_valid_space"]

NAME_RE: Final = re.compile(r"[a-zA-Z0-9.\-_]+")
"""What a space, a function id and an event type name may hold."""

MAX_NAME_CHARS: Final = 255
"""The longest space name, function id or event type name. The original set no bound;
names become NATS subject tokens in cluster mode, and a subject over the server's
control-line limit (4 KiB) makes the server drop the connection."""


def is_valid_space(space: str) -> bool:
    """Whether ``space`` may be written to: ``^[a-zA-Z0-9.\\-_]+$``, 3 to 255 characters."""
    return 3 <= len(space) <= MAX_NAME_CHARS and NAME_RE.fullmatch(space) is not None
