"""The SDK against real servers: a gateway under uvicorn on two free 127.0.0.1 ports (Events
and Configuration API) in the test's event loop, receivers playing functions, and a tiny
scripted ASGI app where a status must be forced (429s, headers seen).

Only the SDK's public API is used on the client side; the blocking client runs in a
thread, since the servers share the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import uvicorn

from eventgateway import AsyncEventGateway, EmitResult, EventGateway, GatewayError
from eventgateway.app import Gateway
from eventgateway.server import bind
from eventgateway.settings import Limits, Settings
from eventgateway.store.memory import MemoryStore
from tests.support.receiver import Receiver, Reply

SPACE = "acme-crm"
USER = {"username": "ada", "firstname": "Ada", "email": "ada@example.com"}


@contextlib.asynccontextmanager
async def running(
    app: Any, *sockets: socket.socket, lifespan: Literal["on", "off"]
) -> AsyncIterator[None]:
    """``app`` served by one uvicorn on ``sockets`` until the block ends."""
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=list(sockets)))
    try:
        while not server.started:  # uvicorn offers a flag, not an event
            if task.done():
                task.result()
                pytest.fail("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield
    finally:
        server.should_exit = True
        await task
        for sock in sockets:
            sock.close()


@dataclass
class Served:
    events_port: int
    config_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.events_port}"

    @property
    def config_url(self) -> str:
        return f"http://127.0.0.1:{self.config_port}"

    def client(self, **options: Any) -> AsyncEventGateway:
        return AsyncEventGateway(self.url, config_url=self.config_url, space=SPACE, **options)


@contextlib.asynccontextmanager
async def serve_gateway(**settings: Any) -> AsyncIterator[Served]:
    settings = {"dispatch": "inline", "shutdown_timeout_s": 0.5, **settings}
    gateway = Gateway(Settings(store_url="memory://", **settings), store=MemoryStore())
    events, config = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    config_port = config.getsockname()[1]
    async with running(gateway.asgi(config_port), events, config, lifespan="on"):
        yield Served(events.getsockname()[1], config_port)


@pytest.fixture
async def gw() -> AsyncIterator[Served]:
    async with serve_gateway() as served:
        yield served


@pytest.fixture
async def client(gw: Served) -> AsyncIterator[AsyncEventGateway]:
    async with gw.client() as sdk:
        yield sdk


async def http_subscriber(
    sdk: AsyncEventGateway, receiver: Receiver, name: str = "crm", **subscription: Any
) -> dict[str, Any]:
    await sdk.create_function(name, "http", {"url": receiver.url(f"/{name}")})
    with contextlib.suppress(GatewayError):  # already registered by an earlier call
        await sdk.create_event_type(subscription.get("event_type", "user.created"))
    subscription.setdefault("event_type", "user.created")
    return await sdk.subscribe(function_id=name, **subscription)


class Scripted:
    """A tiny ASGI app answering the scripted ``(status, headers)`` in turn (the last one
    repeats) and recording each request's headers and body."""

    def __init__(self, *replies: tuple[int, dict[str, str]]) -> None:
        self.replies = list(replies)
        self.seen: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        self.seen.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        status, headers = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        answer = b'{"errors":[{"message":"slow down"}]}' if status >= 400 else b"{}"
        raw = [(name.encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def scripted(*replies: tuple[int, dict[str, str]]) -> AsyncIterator[tuple[Scripted, str]]:
    app, sock = Scripted(*replies), bind("127.0.0.1", 0)
    async with running(app, sock, lifespan="off"):
        yield app, f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- the walkthrough and the ways to emit ----------------------------------------------------


async def test_walkthrough_emit_reaches_the_async_subscription_at_the_space_path(
    gw, client, receiver
):
    subscription = await http_subscriber(client, receiver)
    assert subscription["path"] == "/acme-crm/"

    result = await client.emit(event="user.created", data=USER)

    assert isinstance(result, EmitResult)
    assert (result.status, result.body, result.duplicate) == (202, b"", False)
    [call] = await receiver.wait_for(1, "/crm")
    delivered = call.json()
    assert delivered["type"] == "user.created"
    assert delivered["data"] == USER
    assert delivered["source"] == "/eventgateway/sdk"
    assert delivered["specversion"] == "1.0"


async def test_hosted_style_url_names_the_space_in_the_host(receiver):
    async with serve_gateway(domain="localhost") as gw, gw.client() as setup:
        # The host acme-crm.localhost routes "/" to "/acme-crm/".
        await http_subscriber(setup, receiver, path="/acme-crm/")
        hosted = f"http://{SPACE}.localhost:{gw.events_port}"
        async with AsyncEventGateway(hosted, config_url=gw.config_url, space=SPACE) as sdk:
            result = await sdk.emit(event="user.created", data=USER, id="hosted-1")

    assert result.status == 202
    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["id"] == "hosted-1"


async def test_binary_legacy_and_batch_emits_arrive_as_events(client, receiver):
    await http_subscriber(client, receiver)

    await client.emit("user.created", USER, mode="binary", id="b-1", source="/users")
    await client.emit("user.created", USER, mode="legacy")
    await client.emit_batch(
        [
            {"specversion": "1.0", "id": "n-1", "source": "/b", "type": "user.created"},
            {"specversion": "1.0", "id": "n-2", "source": "/b", "type": "user.created"},
        ]
    )

    calls = [call.json() for call in await receiver.wait_for(4, "/crm")]
    binary = next(event for event in calls if event.get("id") == "b-1")
    assert (binary["source"], binary["data"]) == ("/users", USER)
    legacy = next(event for event in calls if "eventType" in event)
    assert (legacy["eventType"], legacy["data"]) == ("user.created", USER)
    assert sorted(event.get("id") for event in calls if event.get("source") == "/b") == [
        "n-1",
        "n-2",
    ]


async def test_cloudevent_mapping_is_sent_as_is_and_repeats_are_flagged(client, receiver):
    await http_subscriber(client, receiver)
    event: dict[str, Any] = {"eventType": "user.created", "cloudEventsVersion": "0.1"}
    event |= {"source": "/old", "eventID": "old-1", "data": USER}

    first = await client.emit(cloudevent=event)
    again = await client.emit(cloudevent=event)

    assert (first.duplicate, again.duplicate) == (False, True)
    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["eventID"] == "old-1"


async def test_a_sync_subscription_answers_the_emit(client, receiver):
    receiver.reply_json("/hello", {"statusCode": 201, "headers": {"x-by": "fn"}, "body": '{"a":1}'})
    await http_subscriber(client, receiver, "hello", type="sync", path="/acme-crm/hello")

    result = await client.emit("user.created", USER, path="acme-crm/hello")

    assert (result.status, result.headers["x-by"], result.json(), result.text) == (
        201,
        "fn",
        {"a": 1},
        '{"a":1}',
    )


# -- the Configuration API ---------------------------------------------------------------------


async def test_functions_and_event_types_round_trip(client, receiver):
    url = receiver.url("/f")
    created = await client.create_function(
        "f1", "http", {"url": url}, metadata={"team": "crm"}, contentMode="binary"
    )
    assert created["functionId"] == "f1"
    assert created["contentMode"] == "binary"
    updated = await client.update_function("f1", "http", {"url": url + "2"}, metadata={"x": "y"})
    assert updated["provider"] == {"url": url + "2"}
    assert (await client.get_function("f1"))["metadata"] == {"x": "y"}
    assert [f["functionId"] for f in await client.list_functions(x="y")] == ["f1"]
    assert await client.list_functions(x="other") == []

    assert (await client.create_event_type("a.b", metadata={"k": "v"}))["name"] == "a.b"
    assert (await client.update_event_type("a.b", authorizer_id="f1"))["authorizerId"] == "f1"
    assert (await client.get_event_type("a.b"))["authorizerId"] == "f1"
    assert [t["name"] for t in await client.list_event_types()] == ["a.b"]
    await client.update_event_type("a.b")  # drops the authorizer, so both can go
    await client.delete_event_type("a.b")
    await client.delete_function("f1")
    assert await client.list_event_types() == []
    assert await client.list_functions() == []


async def test_subscriptions_and_cors_round_trip(client, receiver):
    sub = await http_subscriber(client, receiver, metadata={"svc": "crm"}, ordered=True)
    sub_id = sub["subscriptionId"]
    assert sub["ordered"] is True
    body = {key: sub[key] for key in ("type", "eventType", "functionId", "path", "method")}
    assert (await client.update_subscription(sub_id, {**body, "metadata": {"svc": "new"}}))[
        "metadata"
    ] == {"svc": "new"}
    assert (await client.get_subscription(sub_id))["subscriptionId"] == sub_id
    assert [s["subscriptionId"] for s in await client.list_subscriptions(svc="new")] == [sub_id]
    await client.unsubscribe(sub_id)
    assert await client.list_subscriptions() == []

    cors = await client.create_cors("GET", "/acme-crm/users", allowed_origins=["http://a.test"])
    assert cors["corsId"] == "GET%2Facme-crm%2Fusers"
    body = {"method": "GET", "path": "/acme-crm/users", "allowCredentials": True}
    changed = await client.update_cors(cors["corsId"], body)
    assert changed["allowCredentials"] is True
    assert [c["corsId"] for c in await client.list_cors()] == [cors["corsId"]]
    await client.delete_cors(cors["corsId"])
    assert await client.list_cors() == []
    assert await client.status() is True


async def test_errors_carry_the_gateways_status_and_message(client):
    with pytest.raises(GatewayError) as missing:
        await client.get_function("nope")
    assert (missing.value.status, missing.value.message) == (404, 'Function "nope" not found.')

    await client.create_event_type("user.created")
    with pytest.raises(GatewayError) as twice:
        await client.create_event_type("user.created")
    assert twice.value.status == 409
    assert "already exists" in str(twice.value)

    with pytest.raises(GatewayError) as invalid:
        await client.create_function("f", "http", {})
    assert invalid.value.status == 400
    assert invalid.value.message.startswith("Function doesn't validate.")

    with pytest.raises(GatewayError) as reserved:
        await client.emit("eventgateway.internal", {})
    assert reserved.value.status == 400


# -- bundles, function logs, the delivery log --------------------------------------------------

CRM_HANDLER = 'def handler(event, context):\n    print("Saving user to CRM:", event["data"])\n'


async def test_bundle_function_logs_and_the_live_tail(client):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", CRM_HANDLER)
    bundle = await client.upload_bundle(archive.getvalue())
    assert await client.bundle_exists(bundle["bundleId"]) is True
    assert await client.bundle_exists("0" * 64) is False
    provider = {"bundle": bundle["bundleId"], "handler": "handler.handler"}
    await client.create_function("addUserToCRM", "python", provider)
    await client.create_event_type("user.created")
    await client.subscribe("user.created", "addUserToCRM")

    await client.emit("user.created", USER)

    tail = client.tail_logs("addUserToCRM", since="1h")
    async with contextlib.aclosing(tail):
        async with asyncio.timeout(20):
            async for line in tail:
                if line["message"].startswith("REPORT"):
                    break
    messages = [line["message"] for line in await client.logs("addUserToCRM", since="10m")]
    assert f"Saving user to CRM: {USER}" in messages
    assert [m for m in messages if "CRM" in m] == [
        line["message"] for line in await client.logs("addUserToCRM", filter="CRM")
    ]


async def test_dead_letters_listed_redriven_and_purged(client, receiver):
    receiver.reply("/crm", Reply(status=404))  # a 4xx goes straight to the dead letters
    sub = await http_subscriber(client, receiver)
    for n in range(3):
        await client.emit("user.created", USER, id=f"d-{n}")

    await receiver.wait_for(3, "/crm")
    deadline = time.monotonic() + 10
    while len(letters := await client.list_dead_letters(since=0)) < 3:
        assert time.monotonic() < deadline, "the dead letters did not appear"
        await asyncio.sleep(0.02)  # settling follows the receiver's reply: nothing to await
    assert (await client.get_event("d-0"))["state"] == "dead"
    assert len(await client.list_events(state="dead")) == 3

    receiver.reply("/crm", Reply(status=200))
    assert await client.redrive(ids=[letters[0]["deadLetterId"]]) == 1
    await receiver.wait_for(4, "/crm")
    assert await client.purge_dead_letters(ids=[letters[1]["deadLetterId"], "unknown"]) == 1
    assert await client.purge_dead_letters(subscription_id=sub["subscriptionId"]) == 1
    with pytest.raises(GatewayError) as nothing:
        await client.redrive()
    assert nothing.value.status == 400


async def test_events_replayed_by_id_and_by_window(client, receiver):
    sub = await http_subscriber(client, receiver)
    await client.emit("user.created", USER, id="r-0")
    await receiver.wait_for(1, "/crm")

    by_id = await client.replay(["r-0"])
    await receiver.wait_for(2, "/crm")
    by_window = await client.replay(since="1h", subscription_id=sub["subscriptionId"])
    await receiver.wait_for(3, "/crm")

    skipped = {"deletedSubscription": 0, "atMostOnce": 0, "filtered": 0}
    assert by_id == {"replayed": 1, "events": 1, "skipped": skipped}
    assert by_window == by_id
    assert [call.json()["id"] for call in receiver.calls_to("/crm")] == ["r-0"] * 3
    with pytest.raises(GatewayError) as gone:
        await client.replay(["never-sent"])
    assert gone.value.status == 404
    with pytest.raises(GatewayError) as nothing:
        await client.replay()
    assert nothing.value.status == 400


# -- retries, keys and failures ----------------------------------------------------------------


async def test_429_is_retried_with_the_same_event_until_accepted():
    slow_down = (429, {"retry-after": "0"})
    async with (
        scripted(slow_down, slow_down, (202, {})) as (app, url),
        AsyncEventGateway(url, space=SPACE, retries=3) as sdk,
    ):
        result = await sdk.emit("user.created", USER)

    assert result.status == 202
    assert len(app.seen) == 3
    assert len({body for _, body in app.seen}) == 1  # same id, same time: the same event


async def test_429_after_the_last_retry_raises_with_the_status():
    async with (
        scripted((429, {"retry-after": "0"})) as (app, url),
        AsyncEventGateway(url, space=SPACE, retries=2) as sdk,
    ):
        with pytest.raises(GatewayError) as refused:
            await sdk.emit("user.created", USER)

    assert (refused.value.status, refused.value.message) == (429, "slow down")
    assert len(app.seen) == 3


async def test_a_full_gateway_queue_answers_429(receiver):
    receiver.reply("/crm", Reply(delay_s=1.0))  # holds the one delivery slot
    async with (
        serve_gateway(limits=Limits(queue_max_deliveries=1)) as gw,
        gw.client(retries=0) as sdk,
    ):
        await http_subscriber(sdk, receiver)
        await sdk.emit("user.created", USER)
        with pytest.raises(GatewayError) as full:
            await sdk.emit("user.created", USER)

    assert full.value.status == 429


async def test_the_api_key_goes_with_every_request():
    async with (
        scripted((200, {})) as (app, url),
        AsyncEventGateway(url, config_url=url, space=SPACE, api_key="k1") as sdk,
    ):
        await sdk.emit("user.created", USER)
        await sdk.get_function("f")

    assert [headers["authorization"] for headers, _ in app.seen] == ["Bearer k1"] * 2


async def test_no_gateway_is_a_gateway_error_without_status():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        async with AsyncEventGateway(url, config_url=url, retries=1) as sdk:
            with pytest.raises(GatewayError) as down:
                await sdk.emit("user.created", USER)
            assert await sdk.status() is False

    assert down.value.status is None
    assert "ConnectError" in down.value.message
    assert down.value.message.endswith(f"(POST {url}/default/)")  # which URL failed


# -- the blocking client ----------------------------------------------------------------------


async def test_the_blocking_client_emits_and_configures(gw, receiver):
    def walkthrough() -> tuple[EmitResult, list[dict[str, Any]], GatewayError]:
        with EventGateway(gw.url, config_url=gw.config_url, space=SPACE) as gateway:
            gateway.create_function("crm", "http", {"url": receiver.url("/crm")})
            gateway.create_event_type("user.created")
            gateway.subscribe("user.created", "crm")
            result = gateway.emit(event="user.created", data=USER)
            with pytest.raises(GatewayError) as missing:
                gateway.get_event_type("nope")
            return result, gateway.list_functions(), missing.value

    result, functions, missing = await asyncio.to_thread(walkthrough)

    assert result.status == 202
    assert [f["functionId"] for f in functions] == ["crm"]
    assert missing.status == 404
    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["data"] == USER


# -- the public names ---------------------------------------------------------------------------


def test_public_names():
    import eventgateway
    import eventgateway.sdk

    assert sorted(eventgateway.__all__) == [
        "AsyncEventGateway",
        "EmitResult",
        "EventGateway",
        "GatewayError",
        "__version__",
    ]
    assert eventgateway.EventGateway is eventgateway.sdk.EventGateway
    assert set(eventgateway.__all__) - {"__version__"} <= set(eventgateway.sdk.__all__)
    assert set(dir(eventgateway)) >= set(eventgateway.__all__)
    with pytest.raises(AttributeError, match="Gateway"):
        _ = eventgateway.Gateway
    # The blocking client's methods read like the async ones'.
    assert EventGateway.emit.__doc__ == AsyncEventGateway.emit.__doc__
    assert EventGateway.redrive.__doc__ == AsyncEventGateway.redrive.__doc__
    assert EventGateway.replay.__doc__ == AsyncEventGateway.replay.__doc__


def test_importing_eventgateway_loads_neither_the_client_nor_server_code():
    probe = (
        "import sys, eventgateway; "
        "print(sorted(m for m in sys.modules if m.startswith(('eventgateway', 'httpx'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "['eventgateway']"
