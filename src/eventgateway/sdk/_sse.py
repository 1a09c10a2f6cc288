"""Server-Sent Events decoding for the log stream (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from eventgateway.sdk._wire import GatewayError

__all__ = ["SseDecoder"]


class SseDecoder:
    """Server-Sent Events, fed line by line: the JSON object of each ``data:`` event.

    Comments (``: keep-alive``) and other fields are skipped; several ``data:`` lines of
    one event are joined with newlines, as the SSE spec says.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> dict[str, Any] | None:
        """The event a blank ``line`` completes, else ``None``.

        Raises:
            GatewayError: an event's data is not a JSON object.
        """
        if line:
            name, _, rest = line.partition(":")
            if name == "data":
                self._data.append(rest.removeprefix(" "))
            return None
        if not self._data:
            return None
        text, self._data = "\n".join(self._data), []
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise GatewayError(f"the log stream sent data that is not a JSON object: {text:.100}")
        return value
