"""AWS SDK failures are classified: retry what a retry can fix, dead-letter the rest."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from eventgateway.providers.aws_errors import is_retryable, translate


def answer(code: str, status: int, message: str = "m", **headers: str) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
    }
    return ClientError(response, "Invoke")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("TooManyRequestsException", 429, True),
        ("ThrottlingException", 400, True),  # throttling answered with a 400
        ("ProvisionedThroughputExceededException", 400, True),  # Kinesis
        ("RequestThrottled", 403, True),  # SQS
        ("ServiceUnavailableException", 503, True),  # Firehose
        ("ServiceException", 500, True),
        ("ResourceConflictException", 409, True),  # a Lambda being updated
        ("ResourceInUseException", 400, True),  # a stream still being created
        ("SomethingNew", 502, True),
        ("SomethingNew", 408, True),
        ("ResourceNotFoundException", 404, False),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, False),
        ("AccessDeniedException", 403, False),
        ("UnrecognizedClientException", 403, False),  # an unknown access key
        ("InvalidSignatureException", 403, False),  # a wrong secret
        ("ExpiredTokenException", 403, False),
        ("InvalidParameterValueException", 400, False),
        ("InvalidArgumentException", 400, False),
        ("RequestTooLargeException", 413, False),
        ("SomethingNew", 400, False),
    ],
)
def test_aws_error_codes_are_classified(code: str, status: int, retryable: bool):
    assert is_retryable(code, status) is retryable
    assert translate("f", "lambda", answer(code, status)).retryable is retryable


def test_an_error_answer_names_function_service_code_status_and_message():
    error = translate("crm", "sqs", answer("AccessDenied", 403, "not allowed to SendMessage"))

    assert error.message == (
        "function 'crm': AWS sqs answered AccessDenied (HTTP 403): not allowed to SendMessage"
    )
    assert error.retry_after_s is None


def test_retry_after_is_honoured_on_a_retryable_answer_only():
    throttled = answer("TooManyRequestsException", 429, **{"retry-after": "4"})
    missing = answer("ResourceNotFoundException", 404, **{"retry-after": "4"})

    assert translate("f", "lambda", throttled).retry_after_s == 4.0
    assert translate("f", "lambda", missing).retry_after_s is None


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://kinesis.us-east-1.amazonaws.com"),
        CredentialRetrievalError(provider="container-role", error_msg="timed out"),
        TimeoutError(),
        ConnectionResetError("reset by peer"),
    ],
)
def test_network_errors_and_timeouts_are_retryable(exc: Exception):
    error = translate("f", "lambda", exc)

    assert error.retryable is True
    assert error.message.startswith("function 'f': AWS lambda ")


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (NoCredentialsError(), "no AWS credentials"),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "refused"),
        (ParamValidationError(report="Invalid length for parameter QueueUrl"), "QueueUrl"),
        (ValueError("Invalid endpoint: not a url"), "Invalid endpoint"),
    ],
)
def test_errors_no_retry_can_fix_are_not_retryable(exc: Exception, text: str):
    error = translate("f", "sqs", exc)

    assert error.retryable is False
    assert error.message.startswith("function 'f': ")
    assert text in error.message
