"""The name rule of spaces, function ids and event types (the original's validator).

Outside ``eventgateway.model`` so the SDK can check a space name without importing the
entity model (~30 ms).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["NAME_RE", "is_valid_space"]

NAME_RE: Final = re.compile(r"[a-zA-Z0-9.\-_]+")
"""What a space, a function id and an event type name may hold."""


def is_valid_space(space: str) -> bool:
    """Whether ``space`` may be written to: ``^[a-zA-Z0-9.\\-_]+$`` and at least 3 chars."""
    return len(space) >= 3 and NAME_RE.fullmatch(space) is not None
