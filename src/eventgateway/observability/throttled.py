"""A warning logged at most once per interval, for conditions that repeat per request.

A full disk refuses every accept, and a process out of descriptors every call: a line
each would be thousands a second, written to the very disk that is full (QA).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["ThrottledWarning"]


class ThrottledWarning:
    """``warn(message, *args)`` logs at most once every ``interval_s`` seconds; a line
    after a quiet spell says how many it left out."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._last_s = float("-inf")
        self._left_out = 0

    def warn(self, message: str, *args: object) -> None:
        """Log ``message % args`` as a warning, unless one was logged within the interval."""
        now_s = self._clock()
        if now_s - self._last_s < self._interval_s:
            self._left_out += 1
            return
        if self._left_out:
            message += f" ({self._left_out} more like it in the last {self._interval_s:g} s)"
        self._last_s, self._left_out = now_s, 0
        self._logger.warning(message, *args)
