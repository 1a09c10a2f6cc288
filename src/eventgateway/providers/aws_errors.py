"""AWS SDK failures → :class:`~eventgateway.errors.ProviderError`, retryable or not.

A retry may fix throttling, a 5xx, a network error, a timeout or a resource that is busy
(being updated, still being created): those are retryable, so the subscription's retry
policy applies. A retry cannot fix a missing function, queue or stream, a denied
permission, bad credentials or an invalid parameter: those fail at once (dead letter)
with a message naming the function, the AWS error code and AWS's message.

The SDK's exception classes are looked up in ``sys.modules``, never imported here: an
SDK error can only come from an SDK that is already loaded, and importing it costs ~30 MB.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

from eventgateway.errors import ProviderError

__all__ = ["is_retryable", "translate"]

# Codes that mean "later": AWS answers throttling with a 400 or 403 as often as a 429.
_RETRYABLE_CODES: Final = frozenset(
    {
        # throttling (botocore/retries/standard.py's list and the services' own)
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException", "KMSThrottlingException", "KmsThrottled",
        # transient states and failures
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
        "ServiceException", "ServiceUnavailable", "ServiceUnavailableException",
        "ResourceConflictException", "ResourceNotReadyException", "ResourceInUseException",
        "SnapStartNotReadyException", "ENILimitReachedException",
        "EC2UnexpectedException", "SubnetIPAddressLimitReachedException",
    }
)  # fmt: skip
# botocore exception classes (by name) that a retry may fix: the connection, not the request.
_RETRYABLE_SDK_ERRORS: Final = (
    "HTTPClientError",  # read timeouts, closed connections
    "ConnectionError",  # botocore's: refused, unreachable, connect timeouts, proxy, TLS
    "MetadataRetrievalError",
    "ResponseStreamingError",
    "IncompleteReadError",
    "CredentialRetrievalError",  # fetching role credentials failed this time
    "ChecksumError",
)
_EXCERPT_CHARS: Final = 300


def is_retryable(code: str, status: int | None) -> bool:
    """Whether an AWS error answer may succeed when sent again.

    Args:
        code: the AWS error code (``ResourceNotFoundException``).
        status: the answer's HTTP status, if known.
    """
    if code in _RETRYABLE_CODES:
        return True
    if status is None:
        return False
    return status >= 500 or status in (408, 429)


def translate(function_id: str, service: str, exc: Exception) -> ProviderError:
    """The :class:`ProviderError` for ``exc``, raised calling ``function_id`` on ``service``.

    Args:
        function_id: names the function in the message.
        service: the AWS service called (``lambda``, ``sqs``…), for the message.
        exc: what the SDK (or the network under it) raised.
    """
    name = f"function {function_id!r}"
    response = getattr(exc, "response", None)
    if _is_sdk_error(exc, "ClientError") and isinstance(response, Mapping):
        return _from_answer(name, service, response)
    if _is_sdk_error(exc, "NoCredentialsError"):
        return ProviderError(
            f"{name}: no AWS credentials: give the function awsAccessKeyId and "
            "awsSecretAccessKey, or give the gateway credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, ~/.aws, or an instance role)",
            retryable=False,
        )
    if isinstance(exc, TimeoutError) or any(_is_sdk_error(exc, n) for n in _RETRYABLE_SDK_ERRORS):
        return ProviderError(f"{name}: AWS {service} could not be reached: {_text(exc)}")
    if _is_sdk_error(exc, "BotoCoreError") or isinstance(exc, ValueError):
        # The request never left: a parameter or setting the SDK refused.
        return ProviderError(f"{name}: AWS {service} call refused: {_text(exc)}", retryable=False)
    # OSError, aiohttp's errors and anything unforeseen: the call may have failed in
    # transit, so the retry policy decides (it bounds the attempts).
    return ProviderError(f"{name}: AWS {service} call failed: {_text(exc)}")


def _from_answer(name: str, service: str, response: Mapping[str, Any]) -> ProviderError:
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "UnknownError")
    message = str(error.get("Message") or "")
    status = meta.get("HTTPStatusCode")
    status = status if isinstance(status, int) else None
    retryable = is_retryable(code, status)
    text = f"{name}: AWS {service} answered {code}"
    if status is not None:
        text += f" (HTTP {status})"
    if message:
        text += f": {message[:_EXCERPT_CHARS]}"
    return ProviderError(
        text,
        retryable=retryable,
        retry_after_s=_retry_after_s(meta.get("HTTPHeaders")) if retryable else None,
    )


def _retry_after_s(headers: Any) -> float | None:
    # Lambda's TooManyRequestsException carries Retry-After (seconds); botocore lower-cases
    # header names.
    if not isinstance(headers, Mapping):
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _is_sdk_error(exc: Exception, class_name: str) -> bool:
    module = sys.modules.get("botocore.exceptions")
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


def _text(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:_EXCERPT_CHARS]
