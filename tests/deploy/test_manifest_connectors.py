"""Connector functions (awssqs, awskinesis, awsfirehose) in serverless.yml, as the plugin
reads them: ``inputs`` with ``arn`` and the type's name field, registered with the region."""

from __future__ import annotations

import pathlib

import pytest

from eventgateway.deploy.manifest import load_service
from eventgateway.deploy.model import FunctionSpec, SubscriptionSpec
from eventgateway.deploy.plan_bodies import canonical, function_body, function_summary
from eventgateway.errors import ConfigError
from tests.deploy.test_manifest import FILE, load, marked_line, service

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/users"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:users"


@pytest.fixture(autouse=True)
def in_service_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.chdir(tmp_path)


def queue(provider: str = "region: eu-west-1", inputs: str = "") -> str:
    return service(
        f"""
        toQueue:
          type: awssqs
          inputs:
            arn: {QUEUE_ARN}
            queueUrl: {QUEUE_URL}
            {inputs}
          events:
            - eventgateway: {{type: async, eventType: user.created}}
        """,
        provider=provider,
    )


def test_an_sqs_connector_is_registered_with_its_queue_url_and_region():
    spec = load(queue())

    assert spec.functions == (
        FunctionSpec(
            key="toQueue",
            function_id="toQueue",
            type="awssqs",
            provider={"queueUrl": QUEUE_URL, "region": "eu-west-1"},
            line=spec.functions[0].line,
        ),
    )
    assert spec.subscriptions == (
        SubscriptionSpec(
            function_id="toQueue",
            type="async",
            event_type="user.created",
            path="/acme/",
            method="POST",
            where="functions.toQueue.events[0]",
        ),
    )
    assert spec.warnings == ()


@pytest.mark.parametrize(
    ("kind", "field", "arn"),
    [
        ("awskinesis", "streamName", "arn:aws:kinesis:us-east-2:123456789012:stream/clicks"),
        (
            "awsfirehose",
            "deliveryStreamName",
            "arn:aws:firehose:us-east-2:123456789012:deliverystream/clicks",
        ),
    ],
)
def test_stream_connectors_without_provider_region_take_the_arns(kind: str, field: str, arn: str):
    text = service(f"f:\n  type: {kind}\n  inputs: {{arn: '{arn}', {field}: clicks}}")

    [function] = load(text).functions

    assert (function.type, function.provider) == (kind, {field: "clicks", "region": "us-east-2"})


def test_provider_region_is_resolved_when_connectors_use_it():
    text = queue(provider="region: ${opt:region, 'eu-west-1'}")

    assert load(text).functions[0].provider["region"] == "eu-west-1"
    with pytest.raises(ConfigError) as caught:
        load(text, options={"region": "us-east-1"})
    assert "is in region eu-west-1, but provider.region is us-east-1" in str(caught.value)


def test_the_body_is_the_plugins_and_the_gateway_echoes_it_unchanged():
    [function] = load(queue()).functions

    body = function_body(function, {"service": "svc", "stage": "dev"}, bundle_id=None)

    # Contract §6.3 for a connector, without the stack's access key (eg creates no stack).
    assert body == {
        "functionId": "toQueue",
        "type": "awssqs",
        "provider": {"queueUrl": QUEUE_URL, "region": "eu-west-1"},
        "metadata": {"service": "svc", "stage": "dev"},
    }
    assert canonical("function", body)["provider"] == body["provider"]
    assert function_summary(body) == f"awssqs, {QUEUE_URL}"


def test_code_keys_on_a_connector_are_warned_about():
    inputs = f"{{arn: '{QUEUE_ARN}', queueUrl: '{QUEUE_URL}'}}"
    text = service(f"f:\n  type: awssqs\n  handler: h.main\n  inputs: {inputs}")

    spec = load(text)

    assert [w.split(": ", 2)[1:] for w in spec.warnings] == [
        ["functions.f.handler", "ignored for type: awssqs (events go to the SQS queue)"]
    ]


ERRORS = [
    ("logicalId", service("f:\n  type: awsfirehose\n  inputs:\n    logicalId: Stream  # <-"),
     "functions.f.inputs.logicalId",
     "names a CloudFormation resource, and eg deploys no CloudFormation stack; give arn: and "
     "deliveryStreamName: of the existing Firehose delivery stream instead"),
    ("no inputs", service("f:  # <-\n  type: awskinesis"), "functions.f",
     "type: awskinesis needs inputs: with arn: and streamName: of the Kinesis stream"),
    ("no name", service(f"f:\n  type: awssqs\n  inputs:  # <-\n    arn: {QUEUE_ARN}"),
     "functions.f.inputs", "type: awssqs needs both arn: and queueUrl: of the SQS queue"),
    ("no arn", service(f"f:\n  type: awssqs\n  inputs:  # <-\n    queueUrl: {QUEUE_URL}"),
     "functions.f.inputs", "needs both arn: and queueUrl:"),
    ("arn of another service",
     service("f:\n  type: awskinesis\n  inputs:\n    streamName: s\n"
             f"    arn: {QUEUE_ARN}  # <-"),
     "functions.f.inputs.arn", "must be the ARN of the Kinesis stream, like arn:aws:kinesis:"),
    ("queue name, not url",
     service(f"f:\n  type: awssqs\n  inputs:\n    arn: {QUEUE_ARN}\n    queueUrl: users  # <-"),
     "functions.f.inputs.queueUrl", "must be the queue's URL"),
    ("region mismatch", queue(provider="region: us-east-1").replace(
        f"arn: {QUEUE_ARN}", f"arn: {QUEUE_ARN}  # <-"),
     "functions.toQueue.inputs.arn",
     "is in region eu-west-1, but provider.region is us-east-1: the gateway calls AWS in "
     "provider.region"),
    ("bad region", queue(provider="region: eu-west-1.evil.example  # <-"),
     "provider.region", "'eu-west-1.evil.example' is not an AWS region name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key_path", "fragment"),
    [pytest.param(text, key, fragment, id=name) for name, text, key, fragment in ERRORS],
)
def test_errors_name_file_line_and_key(text: str, key_path: str, fragment: str):
    with pytest.raises(ConfigError) as caught:
        load(text)

    message = str(caught.value)
    assert message.startswith(f"serverless.yml:{marked_line(text)}: {key_path}: "), message
    assert fragment in message


def test_without_connectors_provider_region_is_not_resolved():
    text = service("f: {handler: h.main}", provider="region: ${ssm:/region}")
    FILE.write_text(text, encoding="utf-8")

    assert load_service(FILE, environ={}).functions[0].type == "python"
