"""Function provider configurations: per-type validation and the normalised echo.

The original re-serialised ``provider`` from a typed struct per function type, so the
echo holds only the known keys, in a fixed order, with empty optional keys dropped and
credentials kept as given. The plugin compares that echo with its own object to decide
whether to update a function (contract §3.3), so it must be reproduced exactly.

The AWS types' ``region`` is accepted as any non-empty string here, as the original did;
:func:`is_aws_region` is checked where a call is made (``providers/aws.py``) and by
``eg deploy``, so a malformed region never becomes part of a host name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from eventgateway.model.gojson import (
    FieldSpec,
    GoJSONError,
    StructSpec,
    as_string,
    decode_struct,
)

__all__ = [
    "AWS_NAME_FIELDS",
    "PROVIDER_TYPES",
    "ProviderConfigError",
    "is_aws_region",
    "normalise_provider",
]

_CREDENTIALS: Final = ("awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken")


class ProviderConfigError(Exception):
    """Raised when a provider configuration is invalid; ``str(exc)`` is the original's text."""


@dataclass(frozen=True, slots=True)
class _ProviderSpec:
    go_type: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    label: str

    @property
    def struct(self) -> StructSpec:
        names = self.required + self.optional
        return StructSpec(
            go_type=self.go_type,
            name=self.go_type.split(".", 1)[1],
            fields=tuple(FieldSpec(n, as_string()) for n in names),
        )


_PROVIDERS: Final[dict[str, _ProviderSpec]] = {
    "awslambda": _ProviderSpec(
        "awslambda.AWSLambda", ("arn", "region"), _CREDENTIALS, "AWS Lambda function"
    ),
    "http": _ProviderSpec("http.HTTP", ("url",), (), "HTTP endpoint"),
    "awssqs": _ProviderSpec(
        "awssqs.AWSSQS", ("queueUrl", "region"), _CREDENTIALS, "AWS SQS function"
    ),
    "awskinesis": _ProviderSpec(
        "awskinesis.AWSKinesis", ("streamName", "region"), _CREDENTIALS, "AWS Kinesis function"
    ),
    "awsfirehose": _ProviderSpec(
        "awsfirehose.AWSFirehose",
        ("deliveryStreamName", "region"),
        _CREDENTIALS,
        "AWS Firehose function",
    ),
}

PROVIDER_TYPES: Final[tuple[str, ...]] = tuple(_PROVIDERS)
"""The function types the Configuration API accepts."""

AWS_NAME_FIELDS: Final[dict[str, str]] = {
    "awslambda": "arn",
    "awssqs": "queueUrl",
    "awskinesis": "streamName",
    "awsfirehose": "deliveryStreamName",
}
"""The field that names the target (function, queue, stream) of each AWS type."""

# Every partition's region names (botocore's partitions.json: us-east-1, cn-north-1,
# us-gov-west-1, us-isob-east-1, eusc-de-east-1…): letters and dashes, then a number.
# No dots, colons or slashes, so the region cannot turn the endpoint into another host.
_AWS_REGION = re.compile(r"[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2}")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BAD_HOST_CHARS = frozenset(' "<>\\^`{|}')


def _is_absolute_url(value: str) -> bool:
    """go-playground's ``url`` rule: Go's ``url.ParseRequestURI`` succeeds with a scheme."""
    value = value.split("#", 1)[0]
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    scheme = _SCHEME.match(value)
    if scheme is None:
        return False
    rest = value[scheme.end() :]
    # A request URI with a scheme must continue with a path ("http:foo" is refused).
    if not rest.startswith("/"):
        return False
    if rest.startswith("//"):
        authority = re.split(r"[/?]", rest[2:], maxsplit=1)[0]
        host = authority.rsplit("@", 1)[-1]
        if any(c in _BAD_HOST_CHARS for c in host):
            return False
    return True


def is_aws_region(value: object) -> bool:
    """Whether ``value`` is shaped like an AWS region name (``us-east-1``, ``cn-north-1``).

    Only the shape is checked, not that AWS has the region, so new regions work.
    """
    return isinstance(value, str) and _AWS_REGION.fullmatch(value) is not None


def normalise_provider(type: str, config: Any) -> dict[str, str]:
    """Validate ``config`` for a function of ``type`` and return the normalised echo.

    Args:
        type: a member of :data:`PROVIDER_TYPES`.
        config: the decoded ``provider`` JSON value (``None`` for JSON null).

    Returns:
        The known keys in the original's order: required ones, then the non-empty optional
        ones (AWS credentials included as given).

    Raises:
        ProviderConfigError: ``unable to load function provider config: …`` for a value of
            the wrong JSON type, ``missing required fields for …`` for a missing or invalid
            required field.
        KeyError: ``type`` is not a known provider type.
    """
    spec = _PROVIDERS[type]
    try:
        fields = decode_struct(config, spec.struct)
    except GoJSONError as exc:
        raise ProviderConfigError(f"unable to load function provider config: {exc}") from exc
    missing = ProviderConfigError(f"missing required fields for {spec.label}")
    for name in spec.required:
        if not fields.get(name):
            raise missing
    if type == "http" and not _is_absolute_url(fields["url"]):
        raise missing
    echo = {name: fields[name] for name in spec.required}
    echo.update({name: fields[name] for name in spec.optional if fields.get(name)})
    return echo
