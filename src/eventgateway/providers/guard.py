"""The SSRF guard of outbound calls: every address a call would connect to is checked first.

Three layers, so no packet reaches a refused address whichever path a call takes:

* :class:`GuardedResolver` drops refused addresses from every DNS answer, so a name that
  resolves to public and private addresses is called on the public ones only, and a name
  that resolves only to refused ones fails. The client caches what the resolver returns, so
  its DNS cache holds allowed addresses only; a DNS change after registration (rebinding) is
  judged when the name is resolved again. Pooled connections were opened to an allowed
  address by the same (immutable) policy.
* IP literals never reach a resolver: they are judged as socket addresses, like every other.
* :func:`open_guarded_socket` checks the socket address once more right before a socket is
  created for it: the last line, whatever parsing or caching did before. The delivery client
  (``providers/http_client.py``) creates every socket with it.

Refusals travel as :class:`TargetRefusedError` (an ``OSError``, as resolvers and sockets
raise); :func:`find_refusal` digs it out of wrappers.
:class:`TargetCheck` is the registration-time check (a clear 400).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import yarl

from eventgateway.errors import ValidationError
from eventgateway.model.entities import Function
from eventgateway.providers.resolver import Resolver, ResolveResult, ThreadedResolver
from eventgateway.providers.targets import Refusal, TargetPolicy, parse_address

__all__ = [
    "GuardedResolver",
    "TargetCheck",
    "TargetRefusedError",
    "find_refusal",
    "open_guarded_socket",
    "url_host",
]

logger = logging.getLogger(__name__)


class TargetRefusedError(OSError):
    """Raised when the SSRF guard refuses an address (or every address) of a call."""

    def __init__(self, refusal: Refusal, host: str) -> None:
        super().__init__(
            f"target {refusal.address} of {host!r} is {refusal.reason}; refused by the SSRF guard"
        )
        self.refusal = refusal
        self.host = host


def find_refusal(exc: BaseException) -> TargetRefusedError | None:
    """The :class:`TargetRefusedError` that caused ``exc`` (aiohttp wraps it), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TargetRefusedError):
            return current
        seen.add(id(current))
        os_error = getattr(current, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, TargetRefusedError):
            return os_error
        current = current.__cause__ or current.__context__
    return None


def url_host(url: str) -> str | None:
    """The host of ``url`` as aiohttp will read it (yarl), or ``None`` if it has none."""
    try:
        return yarl.URL(url).raw_host
    except (ValueError, TypeError):
        return None


class GuardedResolver(Resolver):
    """Wraps a resolver and drops the addresses ``policy`` refuses.

    Args:
        policy: what may be reached.
        inner: the resolver asked; by default the system's (``ThreadedResolver``). Tests
            pass one that maps names to chosen addresses.

    Raises (from :meth:`resolve`):
        TargetRefusedError: the name resolves only to refused addresses.
    """

    def __init__(self, policy: TargetPolicy, inner: Resolver | None = None) -> None:
        self._policy = policy
        self._inner = inner
        self._owns_inner = inner is None

    def _resolver(self) -> Resolver:
        if self._inner is None:
            self._inner = ThreadedResolver()
        return self._inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver().resolve(host, port, family)
        if self._policy.is_open:
            return results
        allowed: list[ResolveResult] = []
        refused: list[Refusal] = []
        for result in results:
            address = parse_address(result["host"])
            if address is None:
                # An answer that is not an IP address cannot be judged: drop it.
                logger.warning("SSRF guard: resolver answered %r for %s", result["host"], host)
                continue
            refusal = self._policy.check(address)
            if refusal is None:
                allowed.append(result)
            else:
                refused.append(refusal)
        if refused:
            logger.info(
                "SSRF guard: %s resolves to refused address(es) %s; %d left",
                host,
                ", ".join(str(r.address) for r in refused),
                len(allowed),
            )
        if not allowed:
            if refused:
                raise TargetRefusedError(refused[0], host)
            raise OSError(f"SSRF guard: no IP address to judge for {host!r}")
        return allowed

    async def close(self) -> None:
        if self._owns_inner and self._inner is not None:
            await self._inner.close()


def open_guarded_socket(
    policy: TargetPolicy,
    family: int,
    sockaddr: Any,
    type_: int = socket.SOCK_STREAM,
    proto: int = 0,
) -> socket.socket:
    """A new socket for ``sockaddr``, unless ``policy`` refuses its address.

    Raises:
        TargetRefusedError: the address is refused (no socket was created).
        OSError: the address is not an IP address, so it cannot be judged.
    """
    if not policy.is_open:
        host = str(sockaddr[0])
        address = parse_address(host)
        if address is None:
            raise OSError(f"SSRF guard: cannot judge socket address {host!r}")
        refusal = policy.check(address)
        if refusal is not None:
            raise TargetRefusedError(refusal, host)
    return socket.socket(family=family, type=type_, proto=proto)


class TargetCheck:
    """Registration check: refuses an ``http`` function whose URL reaches only refused addresses.

    A literal refused IP is refused; a name is resolved (within ``timeout_s``) and refused
    when every address it resolves to is. A DNS failure or timeout is not an error: the name
    may resolve later, and every delivery is checked again when it connects.

    Args:
        policy: what may be reached.
        resolver: the resolver asked (default: the system's, ``ThreadedResolver``).
        timeout_s: how long registration waits for DNS.

    Raises (from ``__call__``):
        ValidationError: 400 naming ``provider.url`` and why it is refused.
    """

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        resolver: Resolver | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._timeout_s = timeout_s

    async def __call__(self, function: Function) -> None:
        url = function.provider.get("url") if function.type == "http" else None
        if self._policy.is_open or not isinstance(url, str):
            return
        host = url_host(url)
        if not host:
            return  # the URL rule of the model refuses what has no host
        literal = parse_address(host)
        if literal is not None:
            refusal = self._policy.check(literal)
            if refusal is not None:
                raise ValidationError(f"provider.url: {refusal.message(url)}")
            return
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        try:
            async with asyncio.timeout(self._timeout_s):
                results = await self._resolver.resolve(host, 0, socket.AF_UNSPEC)
        except (OSError, TimeoutError) as exc:
            logger.info("SSRF guard: %s does not resolve at registration (%s)", host, exc)
            return
        refusals = [self._policy.check_text(result["host"]) for result in results]
        if refusals and all(refusals):
            first = refusals[0]
            assert first is not None
            raise ValidationError(f"provider.url: {first.message(url)}")
