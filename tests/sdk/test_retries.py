"""Which emits the SDK sends again, against real servers: only what the gateway refused
or never received in full, unless the caller says the emit is idempotent.

A sync subscription runs its function for every copy of an emit that reaches the
gateway, so a read timeout must not become a second call (QA: a 7 s function got the
same event 4 times from ``timeout_s=1.0, retries=3``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway import AsyncEventGateway, EventGateway, GatewayError
from eventgateway.server import bind
from tests.sdk.test_client import SPACE, USER, running, scripted, serve_gateway


class Held:
    """An HTTP server that records each request and answers the first ``held`` ones only
    when released (a slow function, or a gateway that never answers); later ones get 202."""

    def __init__(self, held: int) -> None:
        self.held = held
        self.bodies: list[bytes] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        self.bodies.append(body)
        self.arrived.set()
        status = 202
        if len(self.bodies) <= self.held:
            await self.release.wait()
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def held_server(held: int) -> AsyncIterator[tuple[Held, str]]:
    app, sock = Held(held), bind("127.0.0.1", 0)
    async with running(app, sock, lifespan="off"):
        try:
            yield app, f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            app.release.set()  # lets the held requests end, so the server can stop


async def test_a_sync_function_that_outlasts_the_timeout_is_called_once():
    held = held_server(held=4)  # every attempt the old SDK made (retries=3)
    async with held as (function, url), serve_gateway() as gw, gw.client() as setup:
        await setup.create_function("job", "http", {"url": url})
        await setup.create_event_type("job.run")
        await setup.subscribe("job.run", "job", type="sync")

        def emit() -> GatewayError:
            options: dict[str, Any] = {"space": SPACE, "timeout_s": 0.5, "retries": 3}
            with EventGateway(gw.url, config_url=gw.config_url, **options) as gateway:
                with pytest.raises(GatewayError) as timed_out:
                    gateway.emit("job.run", {"n": 1})
                return timed_out.value

        error = await asyncio.to_thread(emit)
        await asyncio.wait_for(function.arrived.wait(), 10)
        function.release.set()  # before the gateway stops: it waits for its calls

    assert error.status is None
    assert error.message.startswith("ReadTimeout")
    # Every attempt was made before emit raised: one call means one request was sent.
    assert len(function.bodies) == 1


@pytest.mark.parametrize(("idempotent", "sent"), [(False, 1), (True, 2)])
async def test_after_a_read_timeout_only_an_idempotent_emit_is_sent_again(idempotent, sent):
    async with (
        held_server(held=1) as (gateway, url),
        AsyncEventGateway(url, space=SPACE, timeout_s=0.2, retries=2) as sdk,
    ):
        if idempotent:
            result = await sdk.emit("user.created", USER, idempotent=True)
            assert result.status == 202
        else:
            with pytest.raises(GatewayError, match="ReadTimeout"):
                await sdk.emit("user.created", USER)
        await asyncio.wait_for(gateway.arrived.wait(), 10)

    assert len(gateway.bodies) == sent
    assert len(set(gateway.bodies)) == 1  # the same id: the gateway drops the repeat


@pytest.mark.parametrize(
    ("reply", "idempotent", "sent"),
    [
        ((503, {"retry-after": "0"}), False, 3),  # the gateway's own refusals say when
        ((429, {"retry-after": "0"}), False, 3),
        ((503, {}), False, 1),  # may be a sync function's answer after it acted
        ((503, {}), True, 3),
    ],
)
async def test_a_refusal_is_retried_when_it_says_when_or_the_emit_is_idempotent(
    reply, idempotent, sent
):
    options = {"idempotent": True} if idempotent else {}
    async with (
        scripted(reply) as (app, url),
        AsyncEventGateway(url, space=SPACE, retries=2) as sdk,
    ):
        with pytest.raises(GatewayError) as refused:
            await sdk.emit("user.created", USER, **options)

    assert refused.value.status == reply[0]
    assert len(app.seen) == sent
