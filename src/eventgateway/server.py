"""uvicorn glue: listening sockets, TLS, how uvicorn runs a gateway, and a draining server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from eventgateway.api.problems import error_body
from eventgateway.errors import ConfigError
from eventgateway.read_timeout import NOT_READING, ReadSweeper, ReadTimeouts
from eventgateway.settings import Limits, Settings, Tls

__all__ = ["DrainingServer", "HeadLimitedProtocol", "bind", "check_tls", "uvicorn_config"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _CutOffNotice(logging.Filter):
    """Drops uvicorn's ERROR "Cancel N running task(s), timeout graceful shutdown
    exceeded": each request cut off is answered 503 and logged with a warning of its own
    (``asgi_routing.py``), and a shutdown going as configured is no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Cancel %s running task(s)")


_CUT_OFF_NOTICE: Final = _CutOffNotice()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the gateway to drain on the first signal.

    ``on_started`` is called on the server's event loop once every listener serves. Run
    with ``sockets``, the first is the Events API's listener and the second the
    Configuration API's (as ``PreparedServer.sockets``): each gets its read timeout.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_first_signal: Callable[[], None],
        *,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        logging.getLogger("uvicorn.error").addFilter(_CUT_OFF_NOTICE)  # added once
        self._on_first_signal = on_first_signal
        self._on_started = on_started
        self._read_sweeper: ReadSweeper | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_first_signal()
        super().handle_exit(sig, frame)

    def request_exit(self) -> None:
        """Shut down as on a first SIGTERM; call it on the server's event loop."""
        self._on_first_signal()
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        protocol = self.config.http
        if isinstance(protocol, type) and issubclass(protocol, HeadLimitedProtocol):
            config_port = sockets[1].getsockname()[1] if sockets and len(sockets) > 1 else None
            loop = asyncio.get_running_loop()
            self._read_sweeper = ReadSweeper(protocol.read_timeouts, config_port, loop.time)
        if self.started and self._on_started is not None:
            self._on_started()

    async def on_tick(self, counter: int) -> bool:
        # uvicorn's main loop ticks every 0.1 s already: the sweep rides on it rather than
        # running a task of its own.
        if self._read_sweeper is not None:
            self._read_sweeper.tick(
                c for c in self.server_state.connections if isinstance(c, HeadLimitedProtocol)
            )
        return await super().on_tick(counter)

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
    max_head_bytes = 2 * settings.limits.max_header_bytes + _REQUEST_LINE_ALLOWANCE
    if settings.tls is not None:
        extra["ssl_certfile"] = str(settings.tls.cert_file)
        extra["ssl_keyfile"] = str(settings.tls.key_file)
    return uvicorn.Config(
        app,
        lifespan="on",
        loop="uvloop",
        http=HeadLimitedProtocol.bounded(max_head_bytes, ReadTimeouts.of(settings.limits)),
        ws="none",  # no WebSocket route; "auto" would import websockets (~2.5 MB of RSS)
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        server_header=False,
        # Nothing reads the client address, and the middleware that rewrites it from
        # X-Forwarded-* cost ~2% of the ingest path in the profile.
        proxy_headers=False,
        **extra,
    )


class _EncryptedKey(Exception):
    pass


def _refuse_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal, hanging a service manager.
    raise _EncryptedKey


def check_tls(tls: Tls) -> None:
    """Load the certificate and key once, as uvicorn will, to fail early and legibly.

    Raises:
        ConfigError: a file is missing or unreadable, not PEM, an encrypted key, or a key
            that does not belong to the certificate; the message names the file.
    """
    for what, path, marker in (
        ("certificate", tls.cert_file, b"-----BEGIN CERTIFICATE-----"),
        ("key", tls.key_file, b"PRIVATE KEY-----"),
    ):
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read TLS {what} {str(path)!r}: {exc.strerror}") from exc
        if marker not in text:
            raise ConfigError(
                f"TLS {what} {str(path)!r} is not a PEM {what} (no {marker.decode()!r} line)"
            )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_refuse_password)
    except _EncryptedKey:
        raise ConfigError(
            f"TLS key {str(tls.key_file)!r} is encrypted: give an unencrypted one, e.g. "
            "from `openssl pkey -in KEY -out PLAIN_KEY`"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"TLS key {str(tls.key_file)!r} does not belong to certificate "
                f"{str(tls.cert_file)!r}"
            ) from exc
        raise ConfigError(
            f"cannot use TLS certificate {str(tls.cert_file)!r} with key "
            f"{str(tls.key_file)!r}: {exc.reason or exc}"
        ) from exc
    except OSError as exc:  # e.g. the file went away since it was read
        raise ConfigError(f"cannot load TLS certificate and key: {exc}") from exc


_REQUEST_LINE_ALLOWANCE = 64 * 1024
_LINGER_S = 5.0


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head over ``max_head_bytes`` and
    a request that does not arrive within its listener's read timeout.

    httptools buffers each header whole before uvicorn sees it, so without this bound a
    client could make one connection hold any amount of memory before the APIs' own
    ``max_header_bytes`` check (431 with a precise message) runs. The bound counts the
    request line and the framing too, so it is set well above that check: a head past it
    is answered 431 and the connection closed.

    Each connection stamps ``read_since_s`` when a request begins (and when it opens);
    the server's :class:`~eventgateway.read_timeout.ReadSweeper` calls
    :meth:`time_out_read` once ``read_timeouts`` have passed without the whole request.
    """

    max_head_bytes = 2 * 64 * 1024 + _REQUEST_LINE_ALLOWANCE
    read_timeouts = ReadTimeouts.of(Limits())

    @classmethod
    def bounded(
        cls, max_head_bytes: int, read_timeouts: ReadTimeouts | None = None
    ) -> type[HeadLimitedProtocol]:
        """The protocol class with its bounds (uvicorn builds protocols from a class)."""
        bounds = {
            "max_head_bytes": max_head_bytes,
            "read_timeouts": read_timeouts or cls.read_timeouts,
        }
        return type(cls.__name__, (cls,), bounds)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._refused = False
        self.read_since_s = NOT_READING

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._clock = self.loop.time
        self.read_since_s = self._clock()  # a connection that never sends times out too

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # what the client still sends after a 431 or 408
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        # Called from inside data_received: the chunk holding the start of a keep-alive
        # connection's next request is not counted, the chunks after it are.
        super().on_message_begin()
        self._in_head = True
        self.read_since_s = self._clock()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def reading(self) -> bool:
        """Whether the client still owes part of a request (its head or body)."""
        if self.flow.read_paused:
            return False  # held up by us (a pipelined request, a body not consumed yet)
        cycle = self.cycle
        # No on_message_complete override: that would cost the hot path a call.
        return cycle is None or cycle.scope is not self.scope or cycle.more_body

    def time_out_read(self, timeout_s: float) -> None:
        """Answer 408 if nothing of a response is on the wire yet, else just close."""
        self.read_since_s = NOT_READING
        if self.transport.is_closing():
            return
        cycle = self.cycle
        has_head = cycle is not None and cycle.scope is self.scope
        if has_head:
            responding = cycle.response_started
        else:  # a head in part; the response to a pipelined request before it may be going
            responding = cycle is not None and not cycle.response_complete
        if self.scope is None or responding:
            # No request has begun, so none to answer; or a 408 would cut into a response.
            self.transport.close()
            return
        if has_head:
            cycle.disconnected = True  # the app's receive() returns http.disconnect
            cycle.message_event.set()
        self._refuse(
            b"408 Request Timeout",
            f"The request did not arrive in full within {timeout_s:g} s (the read timeout).",
        )

    def _refuse_head(self) -> None:
        self._refuse(
            b"431 Request Header Fields Too Large",
            f"Request line and headers are over the limit of {self.max_head_bytes} bytes.",
        )

    def _refuse(self, status: bytes, message: str) -> None:
        body = error_body(message)
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\n"
            b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self._refused = True
        self.read_since_s = NOT_READING
        # Closing with unread input would reset the connection, and the client could lose
        # the answer: end our side, discard what still comes, close after a grace period.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_S, self.transport.close)
        else:
            self.transport.close()


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
    # Left non-inheritable (Python's default): the delivery worker, spawned by uvloop, would
    # otherwise hold both ports, and after a kill -9 of this process keep them, accepting
    # connections nobody serves and refusing a restart until its last delivery ends.
    return sock
