"""uvicorn glue: listening sockets, how uvicorn runs a gateway, and a server that drains it."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn

from eventgateway.errors import ConfigError
from eventgateway.settings import Settings

__all__ = ["DrainingServer", "bind", "uvicorn_config"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the gateway to drain on the first signal.

    ``on_started`` is called on the server's event loop once every listener serves.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_first_signal: Callable[[], None],
        *,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_first_signal = on_first_signal
        self._on_started = on_started

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_first_signal()
        super().handle_exit(sig, frame)

    def request_exit(self) -> None:
        """Shut down as on a first SIGTERM; call it on the server's event loop."""
        self._on_first_signal()
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Only the main thread may set signal handlers; a server run on another thread
        # (an embedded gateway) is stopped by its owner through request_exit() instead.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        # uvicorn re-raises the caught signal after a graceful shutdown, which would make
        # `eg serve` exit with -15 after SIGTERM; a clean shutdown exits 0 instead.
        handlers = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def uvicorn_config(
    app: Any, settings: Settings, *, configure_logging: bool = True
) -> uvicorn.Config:
    """How uvicorn runs a gateway's ASGI app: uvloop, httptools, no access log.

    ``configure_logging=False`` leaves the process's logging as it is (uvicorn otherwise
    installs its own handlers), for a gateway embedded in someone else's program.
    """
    extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        server_header=False,
        **extra,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``ConfigError`` naming the port if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns TCP_NODELAY on only for sockets that say so, and
    # without it every response after the first on a keep-alive connection waits ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
