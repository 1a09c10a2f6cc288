"""Wake-ups between the gateway's processes over a UNIX datagram socket.

The HTTP process commits deliveries to SQLite and tells the dispatcher process "new
deliveries" (``d``) or "configuration changed" (``c``) with one datagram, so the
dispatcher never polls the database in the steady state. A datagram that cannot be sent
(the dispatcher is restarting, its buffer is full) is dropped on purpose: the dispatcher
scans the queue when it starts, and a full buffer means it has wake-ups pending anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import socket
from collections.abc import Callable

__all__ = ["CONFIG_CHANGED", "DELIVERIES", "Notifier", "NotifyListener"]

logger = logging.getLogger(__name__)

DELIVERIES = b"d"
CONFIG_CHANGED = b"c"


class Notifier:
    """Sends coalesced wake-ups: at most one datagram per kind per event-loop turn."""

    def __init__(self, path: pathlib.Path) -> None:
        self._path = str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._pending: set[bytes] = set()
        self._scheduled = False

    def deliveries(self) -> None:
        """New deliveries were committed."""
        self._schedule(DELIVERIES)

    def config_changed(self) -> None:
        """The configuration was written."""
        self._schedule(CONFIG_CHANGED)

    def _schedule(self, kind: bytes) -> None:
        self._pending.add(kind)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        for kind in self._pending:
            try:
                self._sock.sendto(kind, self._path)
            except (BlockingIOError, FileNotFoundError, ConnectionRefusedError):
                pass  # see the module docstring: dropping is safe
        self._pending.clear()

    def close(self) -> None:
        self._sock.close()


class NotifyListener:
    """Receives wake-ups on ``path`` and calls the matching callback in the event loop."""

    def __init__(
        self,
        path: pathlib.Path,
        *,
        on_deliveries: Callable[[], None],
        on_config: Callable[[], None],
    ) -> None:
        self._path = path
        self._on = {DELIVERIES: on_deliveries, CONFIG_CHANGED: on_config}
        self._sock: socket.socket | None = None

    def open(self) -> None:
        """Bind the socket (replacing a stale one) and start reading in the running loop."""
        if self._path.exists():
            self._path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(str(self._path))
        os.chmod(self._path, 0o600)
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    def _read(self) -> None:
        assert self._sock is not None
        seen: set[bytes] = set()
        while True:
            try:
                data = self._sock.recv(16)
            except BlockingIOError:
                break
            seen.add(data[:1])
        for kind in seen:
            callback = self._on.get(kind)
            if callback is not None:
                callback()

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._path.unlink(missing_ok=True)
