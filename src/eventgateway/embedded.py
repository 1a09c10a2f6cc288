"""A whole gateway on a background thread of the current process.

``eg dev`` and the user test kit (:mod:`eventgateway.testing`) run a real gateway — both
listeners, store, queue, dispatchers, local runtime — next to their own code without
blocking it::

    with EmbeddedGateway(Settings(events_port=0, config_port=0, data_dir=tmp)) as gateway:
        EventGateway(gateway.events_url, config_url=gateway.config_url).emit(…)

The gateway runs exactly as ``eg serve`` runs it (:func:`eventgateway.serving.prepare_server`:
the same uvicorn settings and uvloop), in an event loop of its own on its own thread.
Signals stay with the main thread: the owner stops the gateway with :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from types import TracebackType

from eventgateway.app import Gateway
from eventgateway.serving import PreparedServer, prepare_server
from eventgateway.settings import Settings

__all__ = ["EmbeddedGateway"]

logger = logging.getLogger(__name__)


def _url(host: str, port: int) -> str:
    # A wildcard address listens everywhere but cannot be connected to: use loopback.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmbeddedGateway:
    """A gateway served on a background thread, with a blocking start/stop lifecycle.

    Args:
        settings: as for ``eg serve``; port 0 asks for a free port (see
            :attr:`events_url` and :attr:`config_url` for the bound ones).

    One instance runs once: after :meth:`stop`, create a new one to run again. Use it as
    a context manager, or call :meth:`start` and :meth:`stop`.

    .. versionadded:: 0.1.0
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._prepared: PreparedServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        if self._prepared is None:
            return "EmbeddedGateway(not started)"
        state = "running" if self.running else "stopped"
        return f"EmbeddedGateway({state}, events_url={self.events_url!r})"

    def __enter__(self) -> EmbeddedGateway:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the gateway's thread is serving (started and not yet stopped)."""
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    @property
    def events_url(self) -> str:
        """The Events API's base URL, ``http://127.0.0.1:<port>``.

        Raises:
            RuntimeError: the gateway was not started.
        """
        return _url(self.settings.host, self._started().events_port)

    @property
    def config_url(self) -> str:
        """The Configuration API's base URL, ``http://127.0.0.1:<port>``.

        Raises:
            RuntimeError: the gateway was not started.
        """
        return _url(self.settings.host, self._started().config_port)

    @property
    def gateway(self) -> Gateway:
        """The running :class:`~eventgateway.app.Gateway`; touch it only from its own loop.

        Raises:
            RuntimeError: the gateway was not started.
        """
        return self._started().gateway

    def _started(self) -> PreparedServer:
        if self._prepared is None:
            raise RuntimeError("the embedded gateway is not started; call start() first")
        return self._prepared

    def start(self, timeout_s: float = 30.0) -> None:
        """Start serving, and return once both listeners serve requests.

        Args:
            timeout_s: how long the store, queues and runtime may take to open.

        Raises:
            ConfigError: a port is taken (``cannot listen on 127.0.0.1:4000: …``) or the
                settings are unusable.
            TimeoutError: the gateway was not serving within ``timeout_s``.
            RuntimeError: this instance was started before.
            Exception: whatever made the gateway fail to start (the store could not
                be opened, …), raised here in the caller's thread.
        """
        if self._prepared is not None:
            raise RuntimeError("this EmbeddedGateway was started before; create a new one")
        # Binding here, in the caller's thread, makes a taken port fail start() directly.
        prepared = prepare_server(
            self.settings, on_started=self._ready.set, configure_logging=False
        )
        self._prepared = prepared
        self._thread = threading.Thread(
            target=self._run,
            args=(prepared,),
            name=f"eventgateway-{prepared.events_port}",
            daemon=True,  # a gateway its owner forgot to stop must not hang interpreter exit
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            with contextlib.suppress(TimeoutError):
                self.stop()
            raise TimeoutError(f"the embedded gateway was not serving after {timeout_s} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down as ``eg serve`` does on SIGTERM, and wait for the thread to end.

        The Events API answers 503 from now on; the listeners stop accepting, in-flight
        requests and deliveries finish (up to ``settings.shutdown_timeout_s`` each), the
        store is closed. Calling it again, or on a gateway never started, does nothing.

        Raises:
            TimeoutError: the gateway was still shutting down after ``timeout_s``.
        """
        thread, prepared, loop = self._thread, self._prepared, self._loop
        if thread is None or prepared is None:
            return
        if thread.is_alive() and loop is not None:
            # uvicorn's flags are read by its loop: set them there, not from this thread.
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(prepared.server.request_exit)
        thread.join(timeout_s)
        if thread.is_alive():
            raise TimeoutError(f"the embedded gateway was still shutting down after {timeout_s} s")

    def _run(self, prepared: PreparedServer) -> None:
        try:
            with asyncio.Runner(loop_factory=prepared.server.config.get_loop_factory()) as runner:
                self._loop = runner.get_loop()
                runner.run(self._serve(prepared))
        except BaseException as exc:  # SystemExit too: uvicorn's answer to a failed startup
            self._error = prepared.router.startup_error or exc
            if not self._ready.is_set():
                return
            logger.error("the embedded gateway stopped with an error", exc_info=exc)
        finally:
            prepared.close_sockets()
            self._ready.set()  # wakes a start() still waiting, also when startup failed

    async def _serve(self, prepared: PreparedServer) -> None:
        try:
            await prepared.server.serve(sockets=prepared.sockets)
        except SystemExit:
            if prepared.router.startup_error is not None:
                # serve()'s process exits here; a thread must close what start() opened
                # (SQLite writer threads, worker processes) before it ends.
                with contextlib.suppress(Exception):
                    await prepared.gateway.stop()
            raise
