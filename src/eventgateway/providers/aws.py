"""Providers of the AWS function types (contract §2.6): ``awslambda`` and the connectors
``awssqs``, ``awskinesis`` and ``awsfirehose``.

Each call sends the event JSON (``Call.body``) once:

- ``awslambda``: a synchronous Invoke (``RequestResponse``) of ``provider.arn``; the reply
  payload is the result (for a sync subscription, the response object). A reply with a
  ``FunctionError`` (the handler raised, timed out or crashed) fails the attempt, and
  the retry policy decides, as for a local runtime function.
- ``awssqs``: SendMessage to ``provider.queueUrl``; the result is the message id.
- ``awskinesis``: PutRecord to ``provider.streamName`` under a random UUID partition key;
  the result is the sequence number.
- ``awsfirehose``: PutRecord to ``provider.deliveryStreamName``; the result is the record id.

Credentials: the function's ``awsAccessKeyId``/``awsSecretAccessKey`` (and
``awsSessionToken``) when given, else the gateway process's default AWS credential chain
(environment, ``~/.aws``, container or instance role), if the gateway lends it
(:mod:`eventgateway.providers.aws_credentials`; not in auth mode by default). Clients,
their connection pools and the lazy SDK import are :mod:`eventgateway.providers.aws_clients`;
error classification is :mod:`eventgateway.providers.aws_errors`.

Timeout: a call is bounded by the attempt's timeout (``Call.timeout_s``): the
subscription's ``attemptTimeoutMs`` for an async delivery (default 5 s, at most 900 s,
Lambda's own maximum), the gateway's function timeout for a sync route. A Lambda still
running then is abandoned, not stopped (AWS runs it to its own timeout) and the attempt
fails as a retryable timeout: give the subscriptions of a slow Lambda an
``attemptTimeoutMs`` above the Lambda's timeout, or the retry runs it again.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar, Final

import msgspec

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.model.providers import AWS_NAME_FIELDS, is_aws_region
from eventgateway.providers.aws_clients import AwsClients, ClientKey
from eventgateway.providers.aws_credentials import default_credentials_refusal
from eventgateway.providers.aws_errors import translate
from eventgateway.providers.base import MAX_REPLY_BYTES, Call, Provider, Reply

__all__ = [
    "AwsProvider",
    "FirehoseProvider",
    "KinesisProvider",
    "LambdaProvider",
    "SqsProvider",
    "aws_providers",
]

_EXCERPT_CHARS: Final = 2000
_CHUNK_BYTES: Final = 64 * 1024


class _LambdaError(msgspec.Struct):
    errorType: str = "Error"
    errorMessage: str = ""


_lambda_error = msgspec.json.Decoder(_LambdaError)


class AwsProvider(Provider):
    """Calls functions of one AWS type through the shared :class:`AwsClients`.

    Subclasses name the ``service`` (botocore's name) and make the request in
    :meth:`send`; the target is the provider field :data:`AWS_NAME_FIELDS` names.

    Args:
        clients: the process's shared clients.
        default_credentials: a function without keys is called with the gateway's own
            AWS credentials; when false, such a call fails, not retryable.
    """

    service: ClassVar[str]
    type_name: ClassVar[str]

    def __init__(self, clients: AwsClients, *, default_credentials: bool = True) -> None:
        self._clients = clients
        self._default_credentials = default_credentials

    async def close(self) -> None:
        """Close the shared clients (every AWS provider does; the second time is a no-op)."""
        await self._clients.close()

    async def call(self, function: Function, call: Call) -> Reply:
        key, target = self._target(function)
        try:
            async with asyncio.timeout(call.timeout_s) as deadline:
                async with self._clients.use(key) as client:
                    return await self.send(client, function, target, call)
        except ProviderError:
            raise
        except TimeoutError as exc:
            if deadline.expired():
                raise ProviderError(
                    f"function {function.function_id!r} timed out after {call.timeout_s:g} s "
                    f"(AWS {self.service} {target})"
                ) from exc
            raise translate(function.function_id, self.service, exc) from exc
        except Exception as exc:  # the SDK's and the network's: translated here, nowhere above
            raise translate(function.function_id, self.service, exc) from exc

    async def send(self, client: Any, function: Function, target: str, call: Call) -> Reply:
        """Make the request with ``client`` (an aiobotocore client) and return the result."""
        raise NotImplementedError

    def _target(self, function: Function) -> tuple[ClientKey, str]:
        # Configs are checked here, not only at registration: the Configuration API takes
        # any region (as the original did), and a store may hold configs of older versions.
        provider = function.provider
        name = f"function {function.function_id!r}"
        field = AWS_NAME_FIELDS[self.type_name]
        target = provider.get(field)
        if not isinstance(target, str) or not target:
            raise ProviderError(f"{name} has no provider.{field}", retryable=False)
        region = provider.get("region")
        if not is_aws_region(region):
            raise ProviderError(
                f"{name}: region {region!r} is not an AWS region name (like us-east-1)",
                retryable=False,
            )
        refusal = None if self._default_credentials else default_credentials_refusal(function)
        if refusal is not None:
            # Stored before the gateway stopped lending its credentials (registration
            # refuses it now): the same explanation, and no retry fixes it.
            raise ProviderError(f"{name}: {refusal}", retryable=False)
        key_id, secret, token = (
            _text(provider.get(n))
            for n in ("awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken")
        )
        if (key_id is None) != (secret is None) or (token is not None and key_id is None):
            raise ProviderError(
                f"{name}: give awsAccessKeyId and awsSecretAccessKey (and optionally "
                "awsSessionToken) together, or none of them to use the gateway's own "
                "AWS credentials",
                retryable=False,
            )
        return ClientKey(self.service, str(region), key_id, secret, token), target


class LambdaProvider(AwsProvider):
    """Calls ``awslambda`` functions: Invoke, ``RequestResponse``, the event as payload."""

    service = "lambda"
    type_name = "awslambda"

    async def send(self, client: Any, function: Function, target: str, call: Call) -> Reply:
        answer = await client.invoke(
            FunctionName=target, InvocationType="RequestResponse", Payload=call.body
        )
        payload = await _read(answer["Payload"], function)
        kind = answer.get("FunctionError")
        if kind:
            try:
                error = _lambda_error.decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError):
                error = _LambdaError(errorMessage=payload.decode("utf-8", "replace")[:300])
            raise ProviderError(
                f"function {function.function_id!r} failed in AWS Lambda ({kind}): "
                f"{error.errorType}: {error.errorMessage}",
                retryable=True,
                body_excerpt=payload[:_EXCERPT_CHARS].decode("utf-8", "replace"),
            )
        return Reply(status=200, body=payload)


class SqsProvider(AwsProvider):
    """Calls ``awssqs`` functions: SendMessage with the event as the message body."""

    service = "sqs"
    type_name = "awssqs"

    async def send(self, client: Any, function: Function, target: str, call: Call) -> Reply:
        answer = await client.send_message(
            QueueUrl=target, MessageBody=call.body.decode("utf-8", "replace")
        )
        return Reply(status=200, body=str(answer["MessageId"]).encode())


class KinesisProvider(AwsProvider):
    """Calls ``awskinesis`` functions: PutRecord under a random UUID partition key."""

    service = "kinesis"
    type_name = "awskinesis"

    async def send(self, client: Any, function: Function, target: str, call: Call) -> Reply:
        answer = await client.put_record(
            StreamName=target, Data=call.body, PartitionKey=str(uuid.uuid4())
        )
        return Reply(status=200, body=str(answer["SequenceNumber"]).encode())


class FirehoseProvider(AwsProvider):
    """Calls ``awsfirehose`` functions: PutRecord of the event."""

    service = "firehose"
    type_name = "awsfirehose"

    async def send(self, client: Any, function: Function, target: str, call: Call) -> Reply:
        answer = await client.put_record(DeliveryStreamName=target, Record={"Data": call.body})
        return Reply(status=200, body=str(answer["RecordId"]).encode())


def aws_providers(
    clients: AwsClients | None = None, *, default_credentials: bool = True
) -> dict[str, Provider]:
    """The four AWS providers by type, sharing ``clients`` (default: new ones).

    Nothing of the AWS SDK is imported until the first call of an AWS function.

    Args:
        clients: the clients to share.
        default_credentials: whether functions without keys are called with the
            gateway's own AWS credentials (``Settings.aws_default_credentials_allowed``).
    """
    shared = clients if clients is not None else AwsClients()
    classes = (LambdaProvider, SqsProvider, KinesisProvider, FirehoseProvider)
    return {cls.type_name: cls(shared, default_credentials=default_credentials) for cls in classes}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def _read(stream: Any, function: Function) -> bytes:
    # Lambda caps a synchronous reply at 6 MB; another endpoint (a test server) is held to
    # the same cap as an http function's reply.
    chunks: list[bytes] = []
    size = 0
    async with stream:
        async for chunk in stream.iter_chunks(_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise ProviderError(
                    f"function {function.function_id!r} replied with more than "
                    f"{MAX_REPLY_BYTES} bytes",
                    retryable=False,
                )
            chunks.append(chunk)
    return b"".join(chunks)
