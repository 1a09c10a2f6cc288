"""DNS for outbound calls: the resolver interface the SSRF guard wraps, and the default one.

The shape of an answer (:class:`ResolveResult`) is the one aiohttp's resolvers use, so a
resolver written for aiohttp fits here unchanged; aiohttp itself is not imported (it costs
~11 MB of memory per process and nothing on the delivery path uses it any more).
"""

from __future__ import annotations

import abc
import asyncio
import socket
from typing import TypedDict

__all__ = ["ResolveResult", "Resolver", "ThreadedResolver"]


class ResolveResult(TypedDict):
    """One address of a name: ``host`` is the IP address as text."""

    hostname: str
    host: str
    port: int
    family: int
    proto: int
    flags: int


class Resolver(abc.ABC):
    """Resolves a host name to the addresses to try, in order."""

    @abc.abstractmethod
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``; ``OSError`` (e.g. ``socket.gaierror``) if none."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the resolver holds."""


_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class ThreadedResolver(Resolver):
    """The system resolver (``getaddrinfo``), run by the event loop in its thread pool."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )
        results: list[ResolveResult] = []
        for info_family, _, proto, _, sockaddr in infos:
            if info_family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                # A link-local address needs its scope (zone) to be usable: "fe80::1%eth0".
                address, service = await loop.getnameinfo(sockaddr, _NUMERIC)
                address_port = int(service)
            elif info_family in (socket.AF_INET, socket.AF_INET6):
                address, address_port = str(sockaddr[0]), int(sockaddr[1])
            else:
                continue  # not an IP address: nothing a TCP call could use
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=address_port,
                    family=int(info_family),
                    proto=proto,
                    flags=_NUMERIC,
                )
            )
        return results
