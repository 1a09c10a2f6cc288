"""A lean HTTP/1.1 client for deliveries: ``POST`` one body, get the whole reply back.

Why not aiohttp: at 64 concurrent deliveries aiohttp spent ~91 µs of CPU per delivery and an
``asyncio.Protocol`` with ``httptools`` ~10 µs (shared/research/building-blocks.md, "Outbound
HTTP client"). This client does what deliveries need and nothing else: ``POST`` with a
keep-alive pool (``providers/http_pool.py``), ``gzip``/``deflate`` replies, TLS with
verification. No redirects (a 3xx is returned as is), cookies, proxies or streaming.

The SSRF guard (``providers/guard.py``) is applied to every connection: names are resolved
through :class:`~eventgateway.providers.guard.GuardedResolver` (which drops refused
addresses; answers cached ``dns_ttl_s``), and every socket address, IP literals included, is
checked by :func:`~eventgateway.providers.guard.open_guarded_socket` right before its socket
is created, so a DNS answer that changed since it was judged is still refused.

What :meth:`HttpClient.post` raises (``providers/http.py`` turns each into a ``ProviderError``):

* :class:`InvalidURLError`, :class:`HeaderError`: the call cannot be made as given;
* :class:`~eventgateway.providers.guard.TargetRefusedError`: the SSRF guard refused;
* :class:`~eventgateway.providers.http_pool.ReplyTooLargeError`: the reply is over the cap;
* ``TimeoutError``: the deadline (connect, send and reply together) passed;
* any other ``OSError`` or :class:`~eventgateway.providers.http_pool.ReplyError`: the
  function could not be reached, or answered something that is not HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yarl

from eventgateway.providers.base import MAX_REPLY_BYTES, Reply
from eventgateway.providers.guard import GuardedResolver, TargetRefusedError, open_guarded_socket
from eventgateway.providers.http_pool import Connection, ConnectionPool, PoolKey
from eventgateway.providers.resolver import Resolver
from eventgateway.providers.targets import TargetPolicy, parse_address

__all__ = ["HeaderError", "HttpClient", "InvalidURLError", "check_url"]

_USER_AGENT = "User-Agent: eventgateway\r\n"
# The client frames the request itself: these call headers would contradict it.
_FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection"})
_MAX_CACHED = 4096  # URLs parsed, and names resolved, kept at most

Address = tuple[int, Any]  # family, sockaddr


class InvalidURLError(ValueError):
    """Raised when a URL is not ``http://`` or ``https://`` with a host and a usable port.

    ``str(exc)`` says what is wrong (``the scheme must be http or https, not 'ftp'``);
    ``url`` is the URL.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url


class HeaderError(ValueError):
    """Raised when a header would not be one header line (CR or LF, or not UTF-8)."""


@dataclass(frozen=True, slots=True)
class _Target:
    """What a URL means for a request, computed once per URL."""

    key: PoolKey
    host: str  # as resolved and as the TLS server name (IDNA, no brackets)
    port: int
    tls: bool
    head: bytes  # the request line, Host and (from the URL's user info) Authorization
    addresses: tuple[Address, ...] | None  # an IP literal's; None: resolve the name


def check_url(url: str) -> None:
    """Refuse ``url`` exactly when :meth:`HttpClient.post` would, before connecting.

    The Configuration API registers ``http`` functions with this check, so a URL that
    every call would refuse is a 400 at registration instead. No I/O: an IP literal is
    checked with ``AI_NUMERICHOST``, a name is not resolved.

    Raises:
        InvalidURLError: saying what is wrong.
    """
    _parse_target(url)


def _parse_target(url: str) -> _Target:
    try:
        parsed = yarl.URL(url)
        scheme = parsed.scheme
        host = parsed.raw_host
        port = parsed.port
        host_header = parsed.host_port_subcomponent
    except (ValueError, TypeError) as exc:
        raise InvalidURLError(url, str(exc) or type(exc).__name__) from exc
    if scheme not in ("http", "https"):
        raise InvalidURLError(url, f"the scheme must be http or https, not {scheme!r}")
    if not host or host_header is None:
        raise InvalidURLError(url, "it has no host")
    if not port:  # None cannot happen for http(s); 0 can be written but never connected to
        raise InvalidURLError(url, f"port {port} cannot be connected to")
    head = f"POST {parsed.raw_path_qs or '/'} HTTP/1.1\r\nHost: {host_header}\r\n"
    if parsed.user is not None:  # as aiohttp did: user info becomes Basic credentials
        credentials = f"{parsed.user}:{parsed.password or ''}".encode("latin-1", "replace")
        head += f"Authorization: Basic {base64.b64encode(credentials).decode('ascii')}\r\n"
    addresses: tuple[Address, ...] | None = None
    if parse_address(host) is not None:
        try:  # numeric: no DNS, the resolver is never asked about a literal
            infos = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
        except (OSError, UnicodeError) as exc:
            raise InvalidURLError(url, f"{host} is not a usable IP address: {exc}") from exc
        addresses = tuple((family, sockaddr) for family, _, _, _, sockaddr in infos)
    return _Target(
        key=(scheme, host, port),
        host=host,
        port=port,
        tls=scheme == "https",
        head=head.encode("ascii"),
        addresses=addresses,
    )


def _header_block(content_type: str, length: int, headers: Sequence[tuple[str, str]]) -> bytes:
    lines: list[str] = []
    user_agent = content_type_line = True
    for name, value in headers:
        lowered = name.lower()
        if lowered in _FRAMING:
            continue
        if lowered == "user-agent":
            user_agent = False
        elif lowered == "content-type":
            content_type_line = False
        lines.append(f"{name}: {value}\r\n")
    if user_agent:
        lines.append(_USER_AGENT)
    if content_type_line:
        lines.append(f"Content-Type: {content_type}\r\n")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    text = "".join(lines)
    # Each line brings one CR and one LF (the last two): any more is an injected line.
    expected = len(lines) + 1
    if text.count("\r") != expected or text.count("\n") != expected:
        bad = [n for n, v in (*headers, ("Content-Type", content_type)) if _crlf(n) or _crlf(v)]
        raise HeaderError(f"header {bad[0] if bad else '?'!r} holds a CR or LF character")
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise HeaderError(f"a header is not valid text: {exc}") from exc


def _crlf(text: str) -> bool:
    return "\r" in text or "\n" in text


class _Deadline:
    __slots__ = ("cancelling", "fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.cancelling = task.cancelling()  # cancellations asked before: not ours
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


class HttpClient:
    """``POST`` requests over a bounded keep-alive pool, behind the SSRF guard.

    Create it in the event loop that uses it; :meth:`close` closes every connection.

    Args:
        max_connections: open connections at most, all hosts together; callers wait for one.
        policy: the SSRF guard's policy.
        resolver: the DNS resolver behind the guard (default: ``loop.getaddrinfo`` in a
            thread, :class:`~eventgateway.providers.resolver.ThreadedResolver`).
        idle_timeout_s: an idle connection older than this is closed.
        dns_ttl_s: how long a name's (allowed) addresses are reused.
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        policy: TargetPolicy,
        resolver: Resolver | None = None,
        idle_timeout_s: float = 15.0,
        dns_ttl_s: float = 60.0,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._policy = policy
        self._resolver = GuardedResolver(policy, resolver)
        self._pool = ConnectionPool(self._loop, max_connections, idle_timeout_s)
        self._dns_ttl_s = dns_ttl_s
        self._targets: dict[str, _Target] = {}
        self._dns: dict[tuple[str, int], tuple[float, tuple[Address, ...]]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
        timeout_s: float,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> Reply:
        """Send ``body`` to ``url``; the reply, whatever its status (see the module's errors).

        A reply body over ``max_reply_bytes`` (decoded) raises ``ReplyTooLargeError``.
        """
        target = self._targets.get(url)
        if target is None:
            target = _parse_target(url)
            if len(self._targets) >= _MAX_CACHED:
                self._targets.clear()
            self._targets[url] = target
        data = b"".join((target.head, _header_block(content_type, len(body), headers), body))
        # The deadline of asyncio.timeout() with a third of its CPU cost (a hot path): a timer
        # that cancels this task, and the cancellation turned into TimeoutError if it fired.
        task = asyncio.current_task()
        assert task is not None
        deadline = _Deadline(task)
        timer = self._loop.call_later(timeout_s, deadline.fire)
        try:
            return await self._exchange(target, data, max_reply_bytes)
        except asyncio.CancelledError:
            if deadline.fired and task.uncancel() <= deadline.cancelling:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()

    async def close(self) -> None:
        """Close every connection (calls in flight fail) and the resolver."""
        self._pool.close()
        self._dns.clear()
        await self._resolver.close()

    async def _exchange(self, target: _Target, data: bytes, max_body: int) -> Reply:
        pool = self._pool
        connection = await pool.acquire(target.key)
        reused = connection is not None
        try:
            if connection is None:
                connection = await self._connect(target)
            try:
                reply = await connection.request(data, max_body)
            except ConnectionError:
                if not reused or connection.received:
                    raise
                # A reused connection that failed before any byte of a reply: the server
                # closed it while idle (its keep-alive timeout) as the request left. Try once
                # more on a new connection. Had the server seen the request, this sends it
                # twice, which deliveries allow: they are at-least-once anyway.
                pool.retire(connection)
                connection = None
                connection = await self._connect(target)
                reply = await connection.request(data, max_body)
        except BaseException:
            # An error, the deadline or a cancellation: the connection is in an unknown
            # state (a reply may still be coming), so it is closed, never reused.
            if connection is None:
                pool.release_slot()
            else:
                pool.release(connection, reuse=False)
            raise
        pool.release(connection, reuse=connection.keep_alive)
        return reply

    async def _connect(self, target: _Target) -> Connection:
        addresses = target.addresses
        if addresses is None:
            addresses = await self._resolve(target)
        sock = await self._open_socket(target, addresses)
        connection = Connection(target.key, self._loop)
        try:
            if target.tls:
                if self._ssl is None:
                    self._ssl = ssl.create_default_context()
                await self._loop.create_connection(
                    lambda: connection, sock=sock, ssl=self._ssl, server_hostname=target.host
                )
            else:
                await self._loop.create_connection(lambda: connection, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._pool.adopt(connection)
        return connection

    async def _resolve(self, target: _Target) -> tuple[Address, ...]:
        key = (target.host, target.port)
        now = self._loop.time()
        cached = self._dns.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        results = await self._resolver.resolve(target.host, target.port, socket.AF_UNSPEC)
        addresses = tuple(
            (
                result["family"],
                (result["host"], result["port"], 0, 0)
                if result["family"] == socket.AF_INET6
                else (result["host"], result["port"]),
            )
            for result in results
        )
        if len(self._dns) >= _MAX_CACHED:
            self._dns.clear()
        self._dns[key] = (now + self._dns_ttl_s, addresses)
        return addresses

    async def _open_socket(self, target: _Target, addresses: Sequence[Address]) -> socket.socket:
        # In order, the next on a failure; a refused address is never connected to.
        refused: TargetRefusedError | None = None
        error: OSError | None = None
        for family, sockaddr in addresses:
            try:
                sock = open_guarded_socket(self._policy, family, sockaddr)
            except TargetRefusedError as exc:
                refused = exc
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await self._loop.sock_connect(sock, sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        if refused is not None:
            raise refused
        if error is not None:
            raise error
        raise OSError(f"no address to connect to for {target.host!r}")
