"""Connector functions of a ``serverless.yml``: ``type: awssqs | awskinesis | awsfirehose``.

As the Serverless plugin reads them (contract §6.1): ``inputs`` gives the target's ``arn``
and its name field (``queueUrl``, ``streamName`` or ``deliveryStreamName``), and the
function is registered with ``provider: {<name field>, region}`` (§6.3), ``region`` being
``provider.region`` (else the one in the ARN). The plugin also adds the access key of an
IAM user its CloudFormation stack creates; ``eg deploy`` creates no stack, so the function
has no keys and the gateway calls AWS with its own credentials (environment, ``~/.aws`` or
an instance role), if it lends them: an auth-mode gateway refuses the function (400)
unless started with ``--aws-default-credentials`` (``providers/aws_credentials.py``).
``inputs.logicalId`` names a resource of that stack, so it is refused.
"""

from __future__ import annotations

import re
from typing import Any, Final

from eventgateway.deploy.manifest_source import Source
from eventgateway.deploy.variables import KeyPath
from eventgateway.model.providers import AWS_NAME_FIELDS, is_aws_region

__all__ = ["CONNECTOR_TYPES", "connector_provider", "uses_connectors"]

CONNECTOR_TYPES: Final = ("awsfirehose", "awskinesis", "awssqs")
_SERVICES: Final = {"awsfirehose": "firehose", "awskinesis": "kinesis", "awssqs": "sqs"}
_WHAT: Final = {
    "awsfirehose": "Firehose delivery stream",
    "awskinesis": "Kinesis stream",
    "awssqs": "SQS queue",
}
_ARN: Final = re.compile(
    r"arn:[a-z-]+:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):[0-9]{12}:\S+"
)
# Keys of a code function that mean nothing for a connector.
_IGNORED: Final = ("handler", "runtime", "memorySize", "timeout", "environment", "concurrency")


def uses_connectors(functions: Any) -> bool:
    """Whether the (unresolved) ``functions:`` section declares a connector function: only
    then is ``provider.region`` read, and so resolved."""
    if not isinstance(functions, dict):
        return False
    return any(
        isinstance(body, dict) and body.get("type") in CONNECTOR_TYPES
        for body in functions.values()
    )


def connector_provider(
    kind: str, body: dict[str, Any], path: KeyPath, region: str | None, src: Source
) -> dict[str, Any]:
    """The ``provider`` object of connector function ``body`` of type ``kind``.

    Args:
        kind: one of :data:`CONNECTOR_TYPES`.
        body: the function's mapping, variables resolved.
        path: the function's key path (``("functions", "toQueue")``).
        region: ``provider.region``, if the file sets it.
        src: the file, for messages.

    Raises:
        ConfigError: ``inputs`` missing, with ``logicalId``, without ``arn`` or the name
            field, an ARN of another service, or no usable region.
    """
    field, what, service = AWS_NAME_FIELDS[kind], _WHAT[kind], _SERVICES[kind]
    at: KeyPath = (*path, "inputs")
    wanted = f"inputs: with arn: and {field}: of the {what}"
    if body.get("inputs") is None:
        raise src.error(path, f"type: {kind} needs {wanted}")
    inputs = src.mapping(body["inputs"], at)
    src.check_keys(inputs, at, ("arn", "logicalId", field))
    if "logicalId" in inputs:
        raise src.error(
            (*at, "logicalId"),
            "names a CloudFormation resource, and eg deploys no CloudFormation stack; "
            f"give arn: and {field}: of the existing {what} instead",
        )
    arn = src.text(inputs.get("arn"), (*at, "arn"))
    name = src.text(inputs.get(field), (*at, field))
    if arn is None or name is None:
        raise src.error(at, f"type: {kind} needs both arn: and {field}: of the {what}")
    found = _ARN.fullmatch(arn)
    if found is None or found["service"] != service:
        raise src.error(
            (*at, "arn"),
            f"must be the ARN of the {what}, like arn:aws:{service}:us-east-1:123456789012:…, "
            f"got {arn!r}",
        )
    if kind == "awssqs" and not name.startswith(("https://", "http://")):
        raise src.error(
            (*at, field),
            f"must be the queue's URL, like https://sqs.us-east-1.amazonaws.com/123456789012/"
            f"users, got {name!r}",
        )
    for key in _IGNORED:
        if key in body:
            src.warn((*path, key), f"ignored for type: {kind} (events go to the {what})")
    return {field: name, "region": _region(region, found["region"], at, src)}


def _region(declared: str | None, in_arn: str, at: KeyPath, src: Source) -> str:
    if declared is None:
        if not is_aws_region(in_arn):
            raise src.error((*at, "arn"), "names no region; set provider.region")
        return in_arn
    if not is_aws_region(declared):
        raise src.error(
            ("provider", "region"), f"{declared!r} is not an AWS region name, like us-east-1"
        )
    if in_arn and in_arn != declared:
        # The plugin would register provider.region, and every call would miss the target.
        raise src.error(
            (*at, "arn"),
            f"is in region {in_arn}, but provider.region is {declared}: the gateway calls "
            f"AWS in provider.region; deploy the service to {in_arn} or use a target there",
        )
    return declared
