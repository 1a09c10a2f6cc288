"""`eg serve` delivers events to SQS, Kinesis and Firehose connector functions, against moto's
server on a local socket; the test reads each message or record back from moto."""

from __future__ import annotations

import json
import pathlib
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.aws import ACCOUNT, REGION, boto, gateway_env, moto_server
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SPACE = "shop"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def gateway(moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("aws-connectors")
    process = GatewayProcess(root / "data", env=gateway_env(root, all=moto)).start()
    yield process
    process.stop()


def deliver(gateway: GatewayProcess, function: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Register ``function``, subscribe it to ``<id>.happened`` and emit one event; the event."""
    name = function["functionId"]
    config = f"{gateway.config_url}/v1/spaces/{SPACE}"
    subscription = {"type": "async", "eventType": f"{name}.happened", "functionId": name}
    for collection, body in [
        ("functions", function),
        ("eventtypes", {"name": f"{name}.happened"}),
        ("subscriptions", {**subscription, "path": f"/{name}", "retryPolicy": {"maxAttempts": 1}}),
    ]:
        response = httpx.post(f"{config}/{collection}", json=body)
        assert response.status_code == 201, response.text
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/shop",
        "type": f"{name}.happened",
        "data": {"user": event_id},
    }
    response = httpx.post(
        f"{gateway.events_url}/{name}",
        json=event,
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text
    return event


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 20) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.05)  # the gateway delivers from another process: nothing to wait on


def assert_is_the_event(gateway: GatewayProcess, body: bytes, event: dict[str, Any]) -> None:
    """``body`` is the event as emitted, and exactly as the gateway says it delivers it."""
    sent = json.loads(body)
    assert {key: sent[key] for key in event} == event
    view = httpx.get(f"{gateway.config_url}/v1/spaces/{SPACE}/events/{event['id']}").json()
    assert sent == view["event"]


def state_of(gateway: GatewayProcess, event_id: str) -> str:
    response = httpx.get(f"{gateway.config_url}/v1/spaces/{SPACE}/events/{event_id}")
    return str(response.json().get("state", ""))


def test_sqs_gets_the_event_as_a_message(moto: str, gateway: GatewayProcess):
    sqs = boto("sqs", moto)
    queue_url = sqs.create_queue(QueueName="users")["QueueUrl"]
    function = {
        "functionId": "toQueue",
        "type": "awssqs",
        "provider": {"queueUrl": queue_url, "region": REGION},
    }

    event = deliver(gateway, function, "q1")

    messages = eventually(
        lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages", []), lambda m: len(m) > 0
    )
    [message] = messages
    assert_is_the_event(gateway, message["Body"].encode(), event)
    assert eventually(lambda: state_of(gateway, "q1"), lambda s: s == "delivered")


def test_kinesis_gets_the_event_as_a_record(moto: str, gateway: GatewayProcess):
    kinesis = boto("kinesis", moto)
    kinesis.create_stream(StreamName="users", ShardCount=1)
    function = {
        "functionId": "toStream",
        "type": "awskinesis",
        "provider": {"streamName": "users", "region": REGION},
    }

    event = deliver(gateway, function, "k1")

    [shard] = kinesis.describe_stream(StreamName="users")["StreamDescription"]["Shards"]
    iterator = kinesis.get_shard_iterator(
        StreamName="users", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = eventually(
        lambda: kinesis.get_records(ShardIterator=iterator)["Records"], lambda r: len(r) > 0
    )
    [record] = records
    assert_is_the_event(gateway, record["Data"], event)
    assert len(record["PartitionKey"]) == 36  # a random UUID
    assert eventually(lambda: state_of(gateway, "k1"), lambda s: s == "delivered")


def test_firehose_gets_the_event_as_a_record(moto: str, gateway: GatewayProcess):
    s3, firehose = boto("s3", moto), boto("firehose", moto)
    s3.create_bucket(Bucket="archive")
    firehose.create_delivery_stream(
        DeliveryStreamName="users",
        S3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": "arn:aws:s3:::archive",
        },
    )
    function = {
        "functionId": "toFirehose",
        "type": "awsfirehose",
        "provider": {"deliveryStreamName": "users", "region": REGION},
    }

    event = deliver(gateway, function, "f1")

    objects = eventually(
        lambda: s3.list_objects_v2(Bucket="archive").get("Contents", []), lambda o: len(o) > 0
    )
    [stored] = objects
    body = s3.get_object(Bucket="archive", Key=stored["Key"])["Body"].read()
    assert_is_the_event(gateway, body, event)
    assert eventually(lambda: state_of(gateway, "f1"), lambda s: s == "delivered")


def test_a_missing_queue_is_dead_lettered_without_retry(moto: str, gateway: GatewayProcess):
    queue_url = f"{moto}/{ACCOUNT}/no-such-queue"
    function = {
        "functionId": "toNowhere",
        "type": "awssqs",
        "provider": {"queueUrl": queue_url, "region": REGION},
    }
    deliver(gateway, function, "n1")

    def letters() -> list[dict[str, Any]]:
        response = httpx.get(f"{gateway.config_url}/v1/spaces/{SPACE}/deadletters")
        return [each for each in response.json()["deadLetters"] if each["eventId"] == "n1"]

    [letter] = eventually(letters, lambda found: len(found) == 1)
    assert letter["attempts"] == 1
    assert "function 'toNowhere': AWS sqs answered" in letter["reason"]
    assert "NonExistentQueue" in letter["reason"] or "QueueDoesNotExist" in letter["reason"]


def connector_service(directory: pathlib.Path, queue_url: str, queue_name: str) -> pathlib.Path:
    """A ``serverless.yml`` with one ``awssqs`` connector on ``user.created``; its folder."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "serverless.yml").write_text(
        textwrap.dedent(
            f"""\
            service: users
            provider: {{name: aws, region: {REGION}}}
            custom: {{eventgateway: {{space: users-space}}}}
            functions:
              toQueue:
                type: awssqs
                inputs:
                  arn: arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}
                  queueUrl: {queue_url}
                events:
                  - eventgateway: {{type: async, eventType: user.created}}
            """
        )
    )
    return directory


def test_eg_deploy_registers_a_connector_that_receives_the_services_events(
    moto: str, gateway: GatewayProcess, tmp_path: pathlib.Path
):
    sqs = boto("sqs", moto)
    queue_url = sqs.create_queue(QueueName="deployed")["QueueUrl"]
    service = connector_service(tmp_path, queue_url, "deployed")

    gateway.eg(service, "deploy")
    gateway.eg(service, "emit", "--event", "user.created", "--data", '{"id": 7}')

    [message] = eventually(
        lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages", []), lambda m: len(m) > 0
    )
    sent = json.loads(message["Body"])
    assert (sent["type"], sent["data"]) == ("user.created", {"id": 7})
    function = httpx.get(f"{gateway.config_url}/v1/spaces/users-space/functions/toQueue").json()
    assert function["provider"] == {"queueUrl": queue_url, "region": REGION}


def test_in_auth_mode_eg_deploy_of_a_connector_needs_the_operator_to_lend_credentials(
    moto: str, tmp_path: pathlib.Path
):
    sqs = boto("sqs", moto)
    queue_url = sqs.create_queue(QueueName="secured")["QueueUrl"]
    service = connector_service(tmp_path / "users", queue_url, "secured")
    env = gateway_env(tmp_path, all=moto)
    secured = GatewayProcess(tmp_path / "data", auth=True, env=env).start()
    try:
        refused = secured.eg(service, "deploy", expect=1)  # claims the space, then stops
    finally:
        secured.stop()
    # The operator restarts it lending its credentials; the same URLs keep the saved key.
    lending = GatewayProcess(
        tmp_path / "data", auth=True, env={**env, "EG_AWS_DEFAULT_CREDENTIALS": "1"}
    )
    lending.events_port, lending.config_port = secured.events_port, secured.config_port
    lending.start()
    try:
        lending.eg(service, "deploy")
        lending.eg(service, "emit", "--event", "user.created", "--data", '{"id": 8}')
        [message] = eventually(
            lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages", []),
            lambda m: len(m) > 0,
        )
    finally:
        lending.stop()

    assert (
        "Error: creating function toQueue: provider.awsAccessKeyId and "
        "provider.awsSecretAccessKey are missing: a function without both keys would be "
        "signed with the gateway's own AWS credentials, which this gateway does not lend to "
        "functions (its operator allows that with eg serve --aws-default-credentials)"
    ) in " ".join(refused.stderr.split())
    assert json.loads(message["Body"])["data"] == {"id": 8}
