"""A real HTTP server on 127.0.0.1 that plays functions in tests and records every call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Callable[[Received], Reply]


class Receiver:
    """Answers each path with a configured :class:`Reply` (default 200, empty body)."""

    def __init__(self) -> None:
        self.calls: list[Received] = []
        self.replies: dict[str, Reply | Responder] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reply(self, path: str, reply: Reply | Responder) -> None:
        self.replies[path] = reply

    def reply_json(self, path: str, value: Any, status: int = 200) -> None:
        self.replies[path] = Reply(status=status, body=json.dumps(value).encode())

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            body=await request.read(),
        )
        configured = self.replies.get(request.path, Reply())
        reply = configured if isinstance(configured, Reply) else configured(received)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)  # plays a slow function, not a wait in a test
        async with self._changed:
            self.calls.append(received)
            self._changed.notify_all()
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    def calls_to(self, path: str) -> list[Received]:
        return [call for call in self.calls if call.path == path]

    async def wait_for(
        self, count: int, path: str | None = None, timeout_s: float = 10.0
    ) -> list[Received]:
        """Wait until ``count`` calls (to ``path``, if given) arrived; fail after ``timeout_s``."""

        def matching() -> list[Received]:
            return self.calls if path is None else self.calls_to(path)

        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(matching()) >= count), timeout_s
            )
        return matching()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``predicate()`` holds after some call arrived; fail after ``timeout_s``."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout_s)
