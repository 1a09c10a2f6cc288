"""Outbound-call test doubles: a resolver with chosen answers and a spy on every connect.

The spy is what lets SSRF tests use addresses such as 10.0.0.1 and 169.254.169.254 safely:
it records every address the event loop is asked to connect to and lets only loopback
through, so a guard that failed would fail the test instead of sending packets anywhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from eventgateway.providers.resolver import Resolver, ResolveResult


class MapResolver(Resolver):
    """Answers names from ``names`` (mutable: change it to play a DNS change); else NXDOMAIN."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not known")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for address in self.names[host]
        ]

    async def close(self) -> None:
        pass


class ConnectSpy:
    """Replaces ``loop.sock_connect`` of the running loop: records, and connects only loopback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.addresses: list[str] = []
        self._loop = loop
        self._real = loop.sock_connect

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        if sock.family == socket.AF_UNIX:  # the gateway's own worker socket, not the network
            await self._real(sock, address)
            return
        host = str(address[0])
        self.addresses.append(host)
        if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            raise OSError(f"test spy: no traffic outside loopback ({host})")
        await self._real(sock, address)

    def hosts(self) -> set[str]:
        return set(self.addresses)
