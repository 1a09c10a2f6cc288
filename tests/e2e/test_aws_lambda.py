"""`eg serve` calls `awslambda` functions (as the Serverless plugin registers them) through a
fake Lambda endpoint that checks each request's SigV4 signature, in every dispatch mode."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.aws import ACCOUNT, ENV_KEY_ID, ENV_SECRET, REGION, gateway_env
from tests.support.fake_lambda import Answer, FakeLambda
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SPACE = "shop"
# Keys as the plugin registers them: the stack's EventGatewayUser access key.
KEY_ID, SECRET = "AKIDEVENTGATEWAYUSER", "event-gateway-user-secret"
FAST_RETRIES = {"initialDelayMs": 50, "maxDelayMs": 50, "jitter": False}


@pytest.fixture
async def fake() -> AsyncIterator[FakeLambda]:
    server = FakeLambda(REGION, {KEY_ID: SECRET, ENV_KEY_ID: ENV_SECRET})
    await server.start()
    yield server
    await server.stop()


async def start_gateway(tmp_path: pathlib.Path, fake: FakeLambda, *args: str) -> GatewayProcess:
    env = gateway_env(tmp_path, **{"lambda": fake.url})
    gateway = GatewayProcess(tmp_path / "data", *args, env=env)
    return await asyncio.to_thread(gateway.start)


async def stop(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.stop)


def lambda_provider(name: str, *, keys: bool = True) -> dict[str, str]:
    provider = {"arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", "region": REGION}
    if keys:
        provider |= {"awsAccessKeyId": KEY_ID, "awsSecretAccessKey": SECRET}
    return provider


async def configure(gateway: GatewayProcess, *bodies: tuple[str, dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=f"{gateway.config_url}/v1/spaces/{SPACE}") as config:
        for collection, body in bodies:
            response = await config.post(f"/{collection}", json=body)
            assert response.status_code == 201, response.text


async def subscribe_async(
    gateway: GatewayProcess, name: str, *, keys: bool = True, **retry_policy: Any
) -> None:
    await configure(
        gateway,
        (
            "functions",
            {"functionId": name, "type": "awslambda", "provider": lambda_provider(name, keys=keys)},
        ),
        ("eventtypes", {"name": f"{name}.happened"}),
        (
            "subscriptions",
            {
                "type": "async",
                "eventType": f"{name}.happened",
                "functionId": name,
                "path": f"/{name}",
                "retryPolicy": retry_policy or {"maxAttempts": 1},
            },
        ),
    )


async def emit(gateway: GatewayProcess, name: str, event_id: str) -> None:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/shop",
        "type": f"{name}.happened",
        "data": {"n": event_id},
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.events_url}/{name}",
            json=event,
            headers={"content-type": "application/cloudevents+json"},
        )
    assert response.status_code == 202, response.text


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 20
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        await asyncio.sleep(0.05)  # another process's work: nothing to wait on but its API


async def dead_letters(gateway: GatewayProcess) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{gateway.config_url}/v1/spaces/{SPACE}/deadletters")
    letters: list[dict[str, Any]] = response.json()["deadLetters"]
    return letters


async def event_states(gateway: GatewayProcess) -> dict[str, str]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{gateway.config_url}/v1/spaces/{SPACE}/events")
    return {event["id"]: event["state"] for event in response.json()["events"]}


@pytest.mark.parametrize("dispatch", ["inline", "process", "worker"])
async def test_an_async_delivery_invokes_the_lambda_with_the_functions_keys(
    tmp_path: pathlib.Path, fake: FakeLambda, dispatch: str
):
    fake.answer("addUser", Answer.result({"saved": True}))
    gateway = await start_gateway(tmp_path, fake, "--dispatch", dispatch)
    try:
        await subscribe_async(gateway, "addUser")
        await emit(gateway, "addUser", "e1")

        await fake.wait_until(lambda: len(fake.invocations) == 1)
        states = await eventually(
            lambda: event_states(gateway), lambda s: s.get("e1") == "delivered"
        )
    finally:
        await stop(gateway)

    [invocation] = fake.invocations
    assert invocation.invocation_type == "RequestResponse"
    assert invocation.access_key_id == KEY_ID  # signed with the function's secret
    assert fake.refused == []
    assert invocation.json()["id"] == "e1"
    assert invocation.json()["data"] == {"n": "e1"}
    assert states == {"e1": "delivered"}


async def test_without_keys_the_gateways_own_credentials_are_used(
    tmp_path: pathlib.Path, fake: FakeLambda
):
    fake.answer("addUser", Answer.result(None))
    gateway = await start_gateway(tmp_path, fake)
    try:
        await subscribe_async(gateway, "addUser", keys=False)
        await emit(gateway, "addUser", "e1")
        await fake.wait_until(lambda: len(fake.invocations) == 1)
    finally:
        await stop(gateway)

    assert [each.access_key_id for each in fake.invocations] == [ENV_KEY_ID]
    assert fake.refused == []


async def test_a_function_error_is_retried_per_policy_then_dead_lettered_with_its_payload(
    tmp_path: pathlib.Path, fake: FakeLambda
):
    fake.answer("addUser", Answer.handler_error("KeyError", "'email'"))
    gateway = await start_gateway(tmp_path, fake)
    try:
        await subscribe_async(gateway, "addUser", maxAttempts=3, **FAST_RETRIES)
        await emit(gateway, "addUser", "e1")
        [letter] = await eventually(lambda: dead_letters(gateway), lambda found: len(found) == 1)
    finally:
        await stop(gateway)

    assert len(fake.invocations) == 3
    assert letter["attempts"] == 3
    assert letter["reason"].endswith(
        "function 'addUser' failed in AWS Lambda (Unhandled): KeyError: 'email'"
    )
    assert json.loads(letter["responseExcerpt"])["errorType"] == "KeyError"


async def test_a_missing_lambda_is_not_retried(tmp_path: pathlib.Path, fake: FakeLambda):
    gateway = await start_gateway(tmp_path, fake)  # no answer set: 404 ResourceNotFound
    try:
        await subscribe_async(gateway, "gone", maxAttempts=5, **FAST_RETRIES)
        await emit(gateway, "gone", "e1")
        [letter] = await eventually(lambda: dead_letters(gateway), lambda found: len(found) == 1)
    finally:
        await stop(gateway)

    assert len(fake.invocations) == 1
    assert letter["attempts"] == 1
    assert "AWS lambda answered ResourceNotFoundException (HTTP 404)" in letter["reason"]


async def test_throttling_is_retried_and_the_next_attempt_delivers(
    tmp_path: pathlib.Path, fake: FakeLambda
):
    answers = iter([Answer.aws_error(429, "TooManyRequestsException", "Rate exceeded")])
    fake.answer("addUser", lambda _: next(answers, Answer.result({"ok": True})))
    gateway = await start_gateway(tmp_path, fake)
    try:
        await subscribe_async(gateway, "addUser", maxAttempts=3, **FAST_RETRIES)
        await emit(gateway, "addUser", "e1")
        states = await eventually(
            lambda: event_states(gateway), lambda s: s.get("e1") == "delivered"
        )
    finally:
        await stop(gateway)

    assert len(fake.invocations) == 2  # one per attempt: the SDK does not retry underneath
    assert states == {"e1": "delivered"}


async def test_a_sync_subscription_answers_with_the_lambdas_response_object(
    tmp_path: pathlib.Path, fake: FakeLambda
):
    fake.answer(
        "getUser",
        Answer.result({"statusCode": 201, "headers": {"x-user": "42"}, "body": '{"id": 42}'}),
    )
    gateway = await start_gateway(tmp_path, fake)
    try:
        await configure(
            gateway,
            (
                "functions",
                {
                    "functionId": "getUser",
                    "type": "awslambda",
                    "provider": lambda_provider("getUser"),
                },
            ),
            ("eventtypes", {"name": "http.request"}),
            (
                "subscriptions",
                {
                    "type": "sync",
                    "eventType": "http.request",
                    "functionId": "getUser",
                    "path": f"/{SPACE}/users/:id",
                    "method": "GET",
                },
            ),
        )
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{gateway.events_url}/{SPACE}/users/42?full=1")
    finally:
        await stop(gateway)

    assert response.status_code == 201
    assert response.headers["x-user"] == "42"
    assert response.json() == {"id": 42}
    [invocation] = fake.invocations
    request = invocation.json()["data"]
    assert (request["path"], request["params"], request["query"]) == (
        f"/{SPACE}/users/42",
        {"id": "42"},
        {"full": ["1"]},
    )


async def test_auth_mode_delivers_with_the_functions_keys_and_refuses_a_function_without(
    tmp_path: pathlib.Path, fake: FakeLambda
):
    fake.answer("addUser", Answer.result({"saved": True}))
    env = gateway_env(tmp_path, **{"lambda": fake.url})  # the gateway has credentials to lend
    gateway = GatewayProcess(tmp_path / "data", auth=True, env=env)
    await asyncio.to_thread(gateway.start)
    try:
        async with httpx.AsyncClient(base_url=gateway.config_url) as config:
            claimed = await config.post("/v1/spaces", json={"name": SPACE})
            config.headers["authorization"] = f"Bearer {claimed.json()['apiKey']}"
            config.base_url = f"{gateway.config_url}/v1/spaces/{SPACE}"
            keyless = await config.post(
                "/functions",
                json={
                    "functionId": "borrower",
                    "type": "awslambda",
                    "provider": lambda_provider("borrower", keys=False),
                },
            )
            function = {"type": "awslambda", "provider": lambda_provider("addUser")}
            subscription = {"type": "async", "eventType": "user.created", "path": f"/{SPACE}/"}
            for collection, body in [
                ("functions", {"functionId": "addUser", **function}),
                ("eventtypes", {"name": "user.created"}),
                ("subscriptions", {"functionId": "addUser", **subscription}),
            ]:
                response = await config.post(f"/{collection}", json=body)
                assert response.status_code == 201, response.text
            event = {"specversion": "1.0", "id": "e1", "source": "/shop", "type": "user.created"}
            emitted = await config.post(
                f"{gateway.events_url}/{SPACE}/",
                json=event,
                headers={"content-type": "application/cloudevents+json"},
            )
            assert emitted.status_code == 202, emitted.text
            view = await eventually(
                lambda: config.get("/events/e1"), lambda r: r.json().get("state") == "delivered"
            )
    finally:
        await stop(gateway)

    assert view.json()["state"] == "delivered"
    assert [each.access_key_id for each in fake.invocations] == [KEY_ID]
    assert keyless.status_code == 400
    assert keyless.json()["errors"][0]["message"] == (
        "provider.awsAccessKeyId and provider.awsSecretAccessKey are missing: a function "
        "without both keys would be signed with the gateway's own AWS credentials, which this "
        "gateway does not lend to functions (its operator allows that with eg serve "
        "--aws-default-credentials)"
    )
