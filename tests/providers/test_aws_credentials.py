"""The registration check of AWS functions without keys (``providers/aws_credentials.py``)."""

from __future__ import annotations

import pytest

from eventgateway.errors import ValidationError
from eventgateway.model.entities import Function
from eventgateway.providers.aws_credentials import AwsCredentialsCheck, missing_keys

KEYS = {"awsAccessKeyId": "AKID", "awsSecretAccessKey": "secret"}
TARGETS = {
    "awslambda": {"arn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
    "awssqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"},
    "awskinesis": {"streamName": "s"},
    "awsfirehose": {"deliveryStreamName": "d"},
}


def function(type_: str, **provider: str) -> Function:
    config = {**TARGETS.get(type_, {"url": "https://example.com/"}), **provider}
    if type_ != "http":
        config["region"] = "us-east-1"
    return Function(space="acme", function_id="f", type=type_, provider=config)


@pytest.mark.parametrize("type_", sorted(TARGETS))
def test_refused_an_aws_function_without_keys_is_a_400_naming_both_fields_and_the_flag(
    type_: str,
):
    with pytest.raises(ValidationError) as caught:
        AwsCredentialsCheck(allow_default=False)(function(type_))

    assert caught.value.message == (
        "provider.awsAccessKeyId and provider.awsSecretAccessKey are missing: a function "
        "without both keys would be signed with the gateway's own AWS credentials, which this "
        "gateway does not lend to functions (its operator allows that with eg serve "
        "--aws-default-credentials)"
    )


@pytest.mark.parametrize(
    ("provider", "missing"),
    [
        ({"awsAccessKeyId": "AKID"}, ("awsSecretAccessKey",)),
        ({"awsSecretAccessKey": "s", "awsAccessKeyId": ""}, ("awsAccessKeyId",)),
        ({"awsSessionToken": "t"}, ("awsAccessKeyId", "awsSecretAccessKey")),
        (KEYS, ()),
        ({**KEYS, "awsSessionToken": "t"}, ()),
    ],
)
def test_missing_keys_names_what_an_aws_function_lacks(
    provider: dict[str, str], missing: tuple[str, ...]
):
    assert missing_keys(function("awssqs", **provider)) == missing


def test_refused_one_missing_key_is_named_alone():
    with pytest.raises(ValidationError) as caught:
        AwsCredentialsCheck(allow_default=False)(function("awslambda", awsAccessKeyId="AKID"))

    assert caught.value.message.startswith("provider.awsSecretAccessKey is missing: ")


@pytest.mark.parametrize(
    ("allow_default", "candidate"),
    [
        (False, function("awslambda", **KEYS)),
        (False, function("http")),
        (True, function("awslambda")),
    ],
)
def test_functions_with_keys_other_types_and_allowed_defaults_pass(
    allow_default: bool, candidate: Function
):
    assert AwsCredentialsCheck(allow_default=allow_default)(candidate) is None
