"""What a running gateway cannot recover from by itself, and how it stops for it.

nats-py closes a client for good when the server answers a command with most ``-ERR``s
(anything but a stale connection or a permissions error): no reconnect follows. An
instance whose client is gone would answer every request that needs it with an error,
forever, and readiness alone keeps it out of a load balancer but never restarts it. So
the first such loss stops the instance with exit status 1, and its supervisor (systemd's
``Restart=on-failure``, Kubernetes, Docker's restart policy) starts it again with fresh
connections. Nothing accepted is lost: a 202 was only answered once JetStream stored the
event, and deliveries in flight come back to another instance when their lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["EXIT_STATUS", "Fatal", "LosesConnection"]

logger = logging.getLogger(__name__)

EXIT_STATUS = 1


@runtime_checkable
class LosesConnection(Protocol):
    """A part holding a connection that can be closed for good under it."""

    on_lost: Callable[[str], None] | None
    """Called once with a sentence naming the connection and why, when that happens."""


class Fatal:
    """The first unrecoverable failure of a running gateway; :attr:`stop` ends the server."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.stop: Callable[[], None] | None = None

    def report(self, reason: str) -> None:
        """Log ``reason`` and stop the gateway (the first report only)."""
        if self.reason is not None:
            return
        self.reason = reason
        logger.error(
            "%s; this instance stops with exit status %d so that its supervisor starts it "
            "again with new connections",
            reason,
            EXIT_STATUS,
        )
        if self.stop is not None:
            self.stop()

    def watch(self, *parts: object) -> None:
        """Have every part among ``parts`` that can lose its connection report here."""
        for part in parts:
            if isinstance(part, LosesConnection):
                part.on_lost = self.report
