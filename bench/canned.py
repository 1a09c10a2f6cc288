"""The cheapest HTTP/1.1 server we can write: a uvloop protocol answering every request 202.

It exists to measure the load generators' own ceiling: against it, the generator (wrk or
bench.loadgen) is the bottleneck, not the server. Run: ``python -m bench.canned PORT``
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

_ANSWER = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"


class Canned(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_complete(self) -> None:
        assert self._transport is not None
        self._transport.write(_ANSWER)


async def serve(port: int, protocol: type[asyncio.Protocol] = Canned) -> None:
    """Serve ``protocol`` on 127.0.0.1:``port`` until cancelled."""
    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
