"""The AWS providers against a fake Lambda endpoint and moto, over real sockets."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.aws import aws_providers
from eventgateway.providers.aws_clients import AwsClients, ClientKey
from eventgateway.providers.base import Call, Provider, Reply
from tests.support.aws import ACCOUNT, ENV_KEY_ID, ENV_SECRET, REGION, boto, moto_server
from tests.support.fake_lambda import Answer, FakeLambda
from tests.support.ports import free_port

KEY_ID, SECRET = "AKIDFUNCTION", "function-secret"
EVENT = b'{"eventType":"user.created","data":{"id":1}}'


@pytest.fixture(autouse=True)
def _local_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    # The default credential chain finds these; nothing asks the instance metadata service
    # or reads the developer's ~/.aws.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeLambda]:
    server = FakeLambda(REGION, {KEY_ID: SECRET, ENV_KEY_ID: ENV_SECRET})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def clients(fake: FakeLambda) -> AsyncIterator[AwsClients]:
    shared = AwsClients(endpoint_urls={"lambda": fake.url})
    yield shared
    await shared.close()


@pytest.fixture
def lam(clients: AwsClients) -> Provider:
    return aws_providers(clients)["awslambda"]


def lambda_function(name: str, *, keys: bool = True, **provider: object) -> Function:
    config: dict[str, object] = {
        "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "region": REGION,
    }
    if keys:
        config |= {"awsAccessKeyId": KEY_ID, "awsSecretAccessKey": SECRET}
    return Function(space="acme", function_id=name, type="awslambda", provider=config | provider)


async def test_lambda_is_invoked_synchronously_with_the_event_and_its_payload_is_the_result(
    fake: FakeLambda, lam: Provider
):
    fake.answer("greet", Answer.result({"statusCode": 201, "body": "hi"}))

    reply = await lam.call(lambda_function("greet"), Call(body=EVENT))

    assert reply == Reply(status=200, body=b'{"statusCode": 201, "body": "hi"}')
    [invocation] = fake.invocations
    assert invocation.function == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:greet"
    assert invocation.invocation_type == "RequestResponse"
    assert invocation.payload == EVENT


async def test_the_functions_own_keys_sign_the_request(fake: FakeLambda, lam: Provider):
    fake.answer("greet", Answer.result(None))

    await lam.call(lambda_function("greet", awsSessionToken="tok"), Call(body=EVENT))

    assert fake.refused == []  # the signature checked out with the function's secret
    [invocation] = fake.invocations
    assert (invocation.access_key_id, invocation.session_token) == (KEY_ID, "tok")


async def test_without_keys_the_default_credential_chain_signs(fake: FakeLambda, lam: Provider):
    fake.answer("greet", Answer.result(None))

    await lam.call(lambda_function("greet", keys=False), Call(body=EVENT))

    assert fake.refused == []
    assert [each.access_key_id for each in fake.invocations] == [ENV_KEY_ID]


async def test_without_keys_or_gateway_credentials_the_call_fails_before_any_request(
    fake: FakeLambda, lam: Provider, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("greet", keys=False), Call(body=EVENT))

    assert caught.value.retryable is False
    assert caught.value.message.startswith("function 'greet': no AWS credentials")
    assert fake.invocations == fake.refused == []


async def test_without_default_credentials_a_call_without_keys_fails_before_any_request(
    fake: FakeLambda, clients: AwsClients
):
    lam = aws_providers(clients, default_credentials=False)["awslambda"]

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("greet", keys=False), Call(body=EVENT))

    assert caught.value.retryable is False
    assert caught.value.message == (
        "function 'greet': provider.awsAccessKeyId and provider.awsSecretAccessKey are "
        "missing: a function without both keys would be signed with the gateway's own AWS "
        "credentials, which this gateway does not lend to functions (its operator allows "
        "that with eg serve --aws-default-credentials)"
    )
    assert fake.invocations == fake.refused == []
    assert len(clients) == 0  # no client was made with the gateway's credentials


async def test_without_default_credentials_one_missing_key_is_named(clients: AwsClients):
    lam = aws_providers(clients, default_credentials=False)["awslambda"]

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("f", awsAccessKeyId=""), Call(body=EVENT))

    assert caught.value.retryable is False
    assert caught.value.message.startswith("function 'f': provider.awsAccessKeyId is missing: ")


async def test_without_default_credentials_a_function_with_keys_is_called(
    fake: FakeLambda, clients: AwsClients
):
    fake.answer("greet", Answer.result("hi"))
    lam = aws_providers(clients, default_credentials=False)["awslambda"]

    reply = await lam.call(lambda_function("greet"), Call(body=EVENT))

    assert reply.body == b'"hi"'
    assert [each.access_key_id for each in fake.invocations] == [KEY_ID]


def without_the_aws_extra() -> pytest.MonkeyPatch:
    """A patch under which importing aiobotocore fails, as on an install without the extra."""
    patch = pytest.MonkeyPatch()
    for name in ("aiobotocore", "aiobotocore.session", "aiobotocore.config"):
        patch.setitem(sys.modules, name, None)
    return patch


async def test_without_the_aws_extra_each_call_fails_naming_it_and_one_warning_is_logged(
    fake: FakeLambda, lam: Provider, caplog: pytest.LogCaptureFixture
):
    fake.answer("greet", Answer.result(None))
    patch = without_the_aws_extra()
    try:
        failures = []
        for _ in range(3):
            with pytest.raises(ProviderError) as caught:
                await lam.call(lambda_function("greet"), Call(body=EVENT))
            failures.append(caught.value)
    finally:
        patch.undo()

    assert {(f.retryable, f.message) for f in failures} == {(False, failures[0].message)}
    assert failures[0].message.startswith(
        "calling AWS functions needs the 'aws' extra of eventgateway, which is not installed"
    )
    assert failures[0].message.endswith(": pip install 'eventgateway[aws]'")
    warnings = [r for r in caplog.records if r.name == "eventgateway.providers.aws_clients"]
    assert [(r.levelname, r.getMessage()) for r in warnings] == [("WARNING", failures[0].message)]
    assert fake.invocations == []
    # Installed later, the next call (a redriven dead letter) goes through.
    await lam.call(lambda_function("greet"), Call(body=EVENT))
    assert len(fake.invocations) == 1


async def test_a_function_error_is_a_retryable_failure_carrying_the_error_payload(
    fake: FakeLambda, lam: Provider
):
    fake.answer("crm", Answer.handler_error("ValueError", "no such user"))

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("crm"), Call(body=EVENT))

    assert caught.value.retryable is True
    assert caught.value.message == (
        "function 'crm' failed in AWS Lambda (Unhandled): ValueError: no such user"
    )
    assert json.loads(caught.value.body_excerpt)["errorMessage"] == "no such user"


async def test_throttling_is_retryable_after_the_delay_lambda_asks_for_and_sent_once(
    fake: FakeLambda, lam: Provider
):
    fake.answer(
        "crm",
        Answer.aws_error(429, "TooManyRequestsException", "Rate exceeded", **{"Retry-After": "7"}),
    )

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("crm"), Call(body=EVENT))

    assert (caught.value.retryable, caught.value.retry_after_s) == (True, 7.0)
    assert len(fake.invocations) == 1  # no retry inside the SDK


async def test_a_server_error_is_retryable_and_sent_once(fake: FakeLambda, lam: Provider):
    fake.answer("crm", Answer.aws_error(500, "ServiceException", "internal"))

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("crm"), Call(body=EVENT))

    assert caught.value.retryable is True
    assert len(fake.invocations) == 1


async def test_a_missing_function_fails_without_retry_naming_function_code_and_message(
    fake: FakeLambda, lam: Provider
):
    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("gone"), Call(body=EVENT))

    assert caught.value.retryable is False
    assert caught.value.message == (
        "function 'gone': AWS lambda answered ResourceNotFoundException (HTTP 404): "
        f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:gone"
    )


async def test_wrong_credentials_fail_without_retry(fake: FakeLambda, lam: Provider):
    fake.answer("crm", Answer.result(None))

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("crm", awsSecretAccessKey="wrong"), Call(body=EVENT))

    assert caught.value.retryable is False
    assert "InvalidSignatureException (HTTP 403)" in caught.value.message
    assert "wrong" not in caught.value.message


async def test_the_attempt_timeout_bounds_a_slow_lambda(fake: FakeLambda, lam: Provider):
    fake.answer("slow", Answer(payload=b"null", delay_s=5.0))

    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("slow"), Call(body=EVENT, timeout_s=0.3))

    assert caught.value.retryable is True
    assert caught.value.message.startswith("function 'slow' timed out after 0.3 s")


async def test_an_unreachable_endpoint_is_retryable():
    clients = AwsClients(endpoint_urls={"lambda": f"http://127.0.0.1:{free_port()}"})
    try:
        with pytest.raises(ProviderError) as caught:
            await aws_providers(clients)["awslambda"].call(lambda_function("f"), Call(body=EVENT))
    finally:
        await clients.close()

    assert caught.value.retryable is True
    assert "AWS lambda could not be reached" in caught.value.message


@pytest.mark.parametrize(
    "region",
    ["evil.example.com", "us-east-1.evil.example.com", "127.0.0.1:9", "us-east-1/x", "", None, 7],
)
async def test_a_malformed_region_fails_before_any_request(
    fake: FakeLambda, lam: Provider, region: object
):
    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("f", region=region), Call(body=EVENT))

    assert caught.value.retryable is False
    assert caught.value.message == (
        f"function 'f': region {region!r} is not an AWS region name (like us-east-1)"
    )
    assert fake.invocations == fake.refused == []


@pytest.mark.parametrize(
    "provider",
    [
        {"awsSecretAccessKey": ""},
        {"awsAccessKeyId": ""},
        {"awsSessionToken": "t", "awsAccessKeyId": "", "awsSecretAccessKey": ""},
    ],
)
async def test_incomplete_credentials_fail_without_retry(lam: Provider, provider: dict[str, str]):
    with pytest.raises(ProviderError) as caught:
        await lam.call(lambda_function("f", **provider), Call(body=EVENT))

    assert caught.value.retryable is False
    assert "give awsAccessKeyId and awsSecretAccessKey" in caught.value.message


async def test_a_client_is_made_once_per_region_and_credentials_and_closed_with_the_provider(
    fake: FakeLambda, clients: AwsClients, lam: Provider
):
    fake.answer("f", Answer.result(None))
    for _ in range(3):
        await lam.call(lambda_function("f"), Call(body=EVENT))
    assert len(clients) == 1
    await lam.call(lambda_function("f", keys=False), Call(body=EVENT))
    assert len(clients) == 2

    await lam.close()
    await lam.close()  # every AWS provider closes the shared clients: twice is harmless

    assert len(clients) == 0
    await lam.call(lambda_function("f"), Call(body=EVENT))  # and a later call opens anew
    assert len(clients) == 1


async def test_past_max_clients_the_least_recently_used_client_is_closed(fake: FakeLambda):
    clients = AwsClients(max_clients=1, endpoint_urls={"lambda": fake.url})
    first, second = ClientKey("lambda", REGION, "a", "b"), ClientKey("lambda", REGION, "c", "d")
    try:
        async with clients.use(first) as old:
            async with clients.use(second):
                assert len(clients) == 1
            assert is_open(old)  # evicted while in use: not closed under its call
        assert not is_open(old)  # closed once that call ended
    finally:
        await clients.close()


async def test_a_client_made_across_a_close_serves_its_call_and_is_then_closed(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
):
    clients = AwsClients(endpoint_urls={"lambda": fake.url})
    key = ClientKey("lambda", REGION, "a", "b")
    async with clients.use(key):  # loads the SDK and warms lambda up: only the make is left
        pass
    await clients.close()
    making, release = asyncio.Event(), asyncio.Event()
    session = clients._session
    real = session.create_client

    class Held:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self._inner = real(*args, **kwargs)

        async def __aenter__(self) -> object:
            making.set()
            await release.wait()  # close() runs while the client is being made
            return await self._inner.__aenter__()

    monkeypatch.setattr(session, "create_client", Held)
    try:
        async with asyncio.timeout(10):
            call = asyncio.create_task(_use_and_report(clients, key))
            await making.wait()
            await clients.close()
            release.set()
            client, was_open = await call
            kept, still_open = len(clients), is_open(client)
    finally:
        await clients.close()

    assert was_open  # the call that made it was served
    assert (kept, still_open) == (0, False)  # then closed, not kept past close()


async def _use_and_report(clients: AwsClients, key: ClientKey) -> tuple[object, bool]:
    async with clients.use(key) as client:
        return client, is_open(client)


def is_open(client: object) -> bool:
    # aiobotocore's HTTP session drops its aiohttp sessions when the client is closed.
    return client._endpoint.http_session._sessions is not None  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
async def connectors(moto: str) -> AsyncIterator[dict[str, Provider]]:
    endpoints = dict.fromkeys(("sqs", "kinesis", "firehose"), moto)
    shared = AwsClients(endpoint_urls=endpoints)
    yield aws_providers(shared)
    await shared.close()


def connector(type_: str, field: str, name: str) -> Function:
    return Function(
        space="acme",
        function_id=f"to-{name}",
        type=type_,
        provider={field: name, "region": REGION},
    )


async def test_sqs_sends_the_event_as_the_message_body(moto: str, connectors: dict[str, Provider]):
    sqs = boto("sqs", moto)
    queue_url = sqs.create_queue(QueueName="unit-events")["QueueUrl"]

    reply = await connectors["awssqs"].call(
        connector("awssqs", "queueUrl", queue_url), Call(body=EVENT)
    )

    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert (message["Body"].encode(), reply.body.decode()) == (EVENT, message["MessageId"])


@pytest.mark.parametrize(
    ("type_", "field"),
    [("awskinesis", "streamName"), ("awsfirehose", "deliveryStreamName")],
)
async def test_a_missing_stream_fails_without_retry(
    connectors: dict[str, Provider], type_: str, field: str
):
    with pytest.raises(ProviderError) as caught:
        await connectors[type_].call(connector(type_, field, "no-such-stream"), Call(body=EVENT))

    assert caught.value.retryable is False
    assert "ResourceNotFoundException" in caught.value.message
    assert caught.value.message.startswith("function 'to-no-such-stream': AWS ")


def test_the_providers_import_no_aws_sdk_until_a_call():
    code = (
        "import sys, json\n"
        "import eventgateway.app\n"
        "from eventgateway.providers.aws import aws_providers\n"
        "aws_providers()\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.partition(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}
    assert {"botocore", "aiobotocore", "aiohttp"}.isdisjoint(loaded)
