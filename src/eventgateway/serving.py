"""Running a gateway: :func:`prepare_server` binds its two listeners — the Events API and
the Configuration API — and builds the uvicorn server running both in one event loop;
:func:`serve` runs that until a signal (``eg serve``), :mod:`eventgateway.embedded` on a
thread.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from eventgateway.app import Gateway
from eventgateway.asgi_routing import PortRouter
from eventgateway.cpus import pin_this_process
from eventgateway.data_dir import DataDirLock
from eventgateway.fatal import EXIT_STATUS
from eventgateway.fdlimit import pool_size, raise_open_files_limit
from eventgateway.gc_tuning import tune_for_serving
from eventgateway.hardening import forbid_inspection
from eventgateway.server import DrainingServer, bind, check_tls, uvicorn_config
from eventgateway.settings import Settings

__all__ = ["PreparedServer", "prepare_server", "serve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedServer:
    """A gateway and the uvicorn server for it, on two bound listeners; nothing runs yet.

    The ports are the bound ones (the settings may ask for 0); ``router.startup_error``
    holds what made ``Gateway.start()`` fail under uvicorn's lifespan.
    """

    gateway: Gateway
    server: DrainingServer
    router: PortRouter
    sockets: list[socket.socket]  # events, config: for ``server.run(sockets=…)``
    events_port: int
    config_port: int

    def close_sockets(self) -> None:
        """Close both listeners (uvicorn closes them on shutdown, not on a failed start)."""
        for sock in self.sockets:
            sock.close()


def prepare_server(
    settings: Settings,
    *,
    on_started: Callable[[], None] | None = None,
    configure_logging: bool = True,
) -> PreparedServer:
    """Bind both listeners and build the gateway and the uvicorn server that will run it.

    Raises:
        ConfigError: a port is taken, another gateway holds the data dir, the settings
            name an unknown store, or the TLS certificate and key cannot be used.
    """
    if settings.tls is not None:
        check_tls(settings.tls)
    if not settings.in_memory:
        # Asked now, so a data dir in use is one line and exit 2 rather than the same
        # error logged by the gateway's start-up, again by uvicorn, and "Application
        # startup failed" (the start takes the lock for good; a race ends there as before).
        DataDirLock.acquire(settings.data_dir, warn=False).release()  # the gateway warns
    events_sock = bind(settings.host, settings.events_port)
    sockets = [events_sock]
    try:
        config_sock = bind(settings.host, settings.config_port)
        sockets.append(config_sock)
        gateway = Gateway(settings)
        router = gateway.asgi(config_sock.getsockname()[1])
        config = uvicorn_config(router, settings, configure_logging=configure_logging)
        server = DrainingServer(config, gateway.begin_drain, on_started=on_started)
        gateway.fatal.stop = server.request_exit
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return PreparedServer(
        gateway,
        server,
        router,
        sockets,
        events_port=events_sock.getsockname()[1],
        config_port=config_sock.getsockname()[1],
    )


def serve(settings: Settings) -> None:
    """Run a gateway until SIGINT/SIGTERM; both listeners in this process.

    Exits with status 1 after a graceful stop when a NATS client was closed for good
    (:mod:`eventgateway.fatal`).
    """
    forbid_inspection()  # before any worker runs: handlers must not read our environment
    raise_open_files_limit(pool_size(settings.limits.dispatch_concurrency))  # they inherit it
    if settings.server_cpus is not None:
        pin_this_process(settings.server_cpus)  # before any thread starts: they inherit it
    prepared = prepare_server(settings)
    host, scheme = settings.host, "http" if settings.tls is None else "https"
    logger.info(
        "Events API on %s://%s:%d, Configuration API on %s://%s:%d, store %s",
        *(scheme, host, prepared.events_port, scheme, host, prepared.config_port),
        settings.resolved_store_url,
    )
    tune_for_serving()  # start-up is over: see gc_tuning
    prepared.server.run(sockets=prepared.sockets)
    if prepared.gateway.fatal.reason is not None:
        sys.exit(EXIT_STATUS)  # logged when it happened; a supervisor restarts us
