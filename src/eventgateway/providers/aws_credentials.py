"""Whether an AWS function without keys may be called with the gateway's own AWS credentials.

A function registered without ``awsAccessKeyId``/``awsSecretAccessKey`` is signed by the
gateway process's default AWS credential chain (environment, ``~/.aws``, container or
instance role). With one user (``--no-auth``, ``eg dev``, the test kit) that is what the
user wants. In auth mode the spaces belong to tenants: lending them the gateway's
credentials would let any of them invoke whatever those reach, and read the reply through
a sync route. So :attr:`Settings.aws_default_credentials_allowed
<eventgateway.settings.Settings.aws_default_credentials_allowed>` is false there unless
the operator says otherwise (``eg serve --aws-default-credentials``), and such a function
is refused twice, with the same explanation:

* at registration (create or update through the Configuration API): a 400, by
  :class:`AwsCredentialsCheck`;
* at each call of one stored before the setting changed: a failure that is not retried,
  by the providers of ``providers/aws.py``.
"""

from __future__ import annotations

from typing import Final

from eventgateway.errors import ValidationError
from eventgateway.model.entities import Function
from eventgateway.model.providers import AWS_NAME_FIELDS

__all__ = ["FLAG", "AwsCredentialsCheck", "default_credentials_refusal", "missing_keys"]

FLAG: Final = "--aws-default-credentials"
"""The ``eg serve`` flag that lets functions without keys use the gateway's credentials."""

_KEYS: Final = ("awsAccessKeyId", "awsSecretAccessKey")


def missing_keys(function: Function) -> tuple[str, ...]:
    """The key fields an AWS function lacks (none for other types, or with both keys)."""
    if function.type not in AWS_NAME_FIELDS:
        return ()
    return tuple(
        name
        for name in _KEYS
        # Blank keys sign nothing: they count as missing, not as the function's own.
        if not (isinstance(value := function.provider.get(name), str) and value.strip())
    )


def default_credentials_refusal(function: Function) -> str | None:
    """Why ``function`` may not be called when the gateway lends no credentials, or ``None``
    when it brings its own keys (or is not an AWS function).

    Example: ``provider.awsAccessKeyId and provider.awsSecretAccessKey are missing: a
    function without both keys would be signed with the gateway's own AWS credentials,
    which this gateway does not lend to functions (its operator allows that with eg serve
    --aws-default-credentials)``.
    """
    missing = missing_keys(function)
    if not missing:
        return None
    fields = " and ".join(f"provider.{name}" for name in missing)
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{fields} {verb} missing: a function without both keys would be signed with the "
        f"gateway's own AWS credentials, which this gateway does not lend to functions "
        f"(its operator allows that with eg serve {FLAG})"
    )


class AwsCredentialsCheck:
    """Registration check: refuses an AWS function without keys unless ``allow_default``.

    Args:
        allow_default: functions without keys may use the gateway's own credentials
            (``Settings.aws_default_credentials_allowed``).

    Raises (from ``__call__``):
        ValidationError: 400 naming the missing fields and :data:`FLAG`.
    """

    def __init__(self, *, allow_default: bool) -> None:
        self._allow_default = allow_default

    def __call__(self, function: Function) -> None:
        if self._allow_default:
            return
        refusal = default_credentials_refusal(function)
        if refusal is not None:
            raise ValidationError(refusal)
