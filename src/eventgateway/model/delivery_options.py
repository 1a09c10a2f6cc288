"""The fields eventgateway adds to the original's subscriptions and functions (pure).

Subscriptions take ``delivery``, ``retryPolicy`` and ``ordered`` (async only); functions
take ``signingSecrets`` and ``contentMode``. All are optional and their defaults are left
out of the JSON, so clients of the original never see them.

The original's decoder has no say here: these values arrive raw and are checked with
messages that name the field and quote the bad value
(``retryPolicy.maxAttempts must be between 1 and 1000, got 0``). The callers in
:mod:`eventgateway.model.validate` put the resource's template in front. Secrets are never
quoted in a message, only their position.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from eventgateway.model.entities import Function, RetryPolicy, Subscription
from eventgateway.model.gojson import go_kind

__all__ = [
    "BACKOFFS",
    "CONTENT_MODES",
    "DELIVERY_MODES",
    "MAX_SIGNING_SECRETS",
    "SECRET_BYTES",
    "SECRET_PREFIX",
    "FunctionOptions",
    "OptionError",
    "SubscriptionOptions",
    "function_options",
    "parse_retry_policy",
    "subscription_options",
]

DELIVERY_MODES: Final = ("at-least-once", "at-most-once")
CONTENT_MODES: Final = ("structured", "binary")
BACKOFFS: Final = ("exponential", "linear", "constant")
MAX_SIGNING_SECRETS: Final = 2
SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = (24, 64)  # Standard Webhooks' bounds for a key


def _defaults(cls: type[msgspec.Struct]) -> dict[str, Any]:
    return {f.name: f.default for f in msgspec.structs.fields(cls)}


# msgspec's omit_defaults compares scalars by identity, not equality: a "at-least-once"
# parsed from JSON is a different object from the field's default and would be echoed. So
# a value equal to its default is replaced by the default object itself (_canonical).
_SUBSCRIPTION_DEFAULTS: Final = _defaults(Subscription)
_FUNCTION_DEFAULTS: Final = _defaults(Function)
_RETRY_DEFAULTS: Final = _defaults(RetryPolicy)
_DEFAULT_DELIVERY: Final[str] = _SUBSCRIPTION_DEFAULTS["delivery"]
_THIRTY_DAYS_S: Final = 30 * 86_400
_THIRTY_DAYS_MS: Final = _THIRTY_DAYS_S * 1_000
_SHOW_MAX: Final = 40


class OptionError(ValueError):
    """Raised when one or more of the added fields are invalid; ``messages`` lists them."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """A subscription's added fields, validated; the defaults mean "not given"."""

    delivery: str = _DEFAULT_DELIVERY
    retry_policy: RetryPolicy | None = None
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class FunctionOptions:
    """A function's added fields, validated; the defaults mean "not given"."""

    signing_secrets: list[str] | None = None
    content_mode: str = _FUNCTION_DEFAULTS["content_mode"]


def _canonical(defaults: Mapping[str, Any], name: str, value: Any) -> Any:
    default = defaults[name]
    return default if value == default and type(value) is type(default) else value


def _show(value: Any) -> str:
    """A short rendering of a bad value for a message."""
    if isinstance(value, str):
        clipped = value if len(value) <= _SHOW_MAX else value[:_SHOW_MAX] + "…"
        return json.dumps(clipped, ensure_ascii=False)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return go_kind(value)


def _choices(names: tuple[str, ...]) -> str:
    quoted = [f'"{n}"' for n in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _enum(field: str, value: Any, names: tuple[str, ...]) -> tuple[str | None, str | None]:
    """``(value, None)`` when ``value`` is one of ``names``, else ``(None, message)``."""
    if isinstance(value, str) and value in names:
        return value, None
    return None, f"{field} must be {_choices(names)}, got {_show(value)}"


def _bool(field: str, value: Any) -> tuple[bool | None, str | None]:
    if isinstance(value, bool):
        return value, None
    return None, f"{field} must be true or false, got {_show(value)}"


# -- retry policy ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Number:
    """One numeric knob of a retry policy: wire name, attribute, kind and bounds."""

    wire: str
    attr: str
    whole: bool  # an int field (``…Ms``, ``maxAttempts``) rather than seconds as a float
    low: float
    high: float
    low_inclusive: bool = True
    unit_note: str = ""

    def bounds(self) -> str:
        low, high = _plain(self.low), _plain(self.high)
        if self.low_inclusive:
            return f"between {low} and {high}{self.unit_note}"
        return f"more than {low} and at most {high}{self.unit_note}"


def _plain(number: float) -> str:
    # 2592000, not 2.592e+06.
    return str(int(number)) if float(number).is_integer() else str(number)


_DAYS_30: Final = " (30 days)"
_NUMBERS: Final = (
    _Number("maxAttempts", "max_attempts", True, 1, 1_000),
    _Number("maxAgeSeconds", "max_age_s", False, 0, _THIRTY_DAYS_S, False, _DAYS_30),
    _Number("initialDelayMs", "initial_delay_ms", True, 0, _THIRTY_DAYS_MS, True, _DAYS_30),
    _Number("maxDelayMs", "max_delay_ms", True, 0, _THIRTY_DAYS_MS, True, _DAYS_30),
    _Number("attemptTimeoutMs", "attempt_timeout_ms", True, 1, 900_000, True, " (15 minutes)"),
    _Number("maxRetryAfterSeconds", "max_retry_after_s", False, 0, _THIRTY_DAYS_S, True, _DAYS_30),
)
_RETRY_KEYS: Final = (
    "maxAttempts",
    "maxAgeSeconds",
    "backoff",
    "initialDelayMs",
    "maxDelayMs",
    "jitter",
    "attemptTimeoutMs",
    "maxRetryAfterSeconds",
)


def _number(field: str, spec: _Number, value: Any) -> tuple[float | int | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a whole number" if spec.whole else "a number"
        return None, f"{field} must be {kind}, got {_show(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"{field} must be a finite number, got {value!r}"
    if spec.whole:
        if isinstance(value, float) and not value.is_integer():
            return None, f"{field} must be a whole number, got {_show(value)}"
        number: float | int = int(value)
    else:
        number = float(value)
    too_low = number < spec.low if spec.low_inclusive else number <= spec.low
    if too_low or number > spec.high:
        return None, f"{field} must be {spec.bounds()}, got {_show(value)}"
    return number, None


def _unknown_key(field: str, key: str) -> str:
    close = difflib.get_close_matches(key, _RETRY_KEYS, n=1) or [
        k for k in _RETRY_KEYS if k.casefold() == key.casefold()
    ]
    hint = f'did you mean "{close[0]}"?' if close else "known keys: " + ", ".join(_RETRY_KEYS)
    return f"{field} has an unknown key {_show(key)} ({hint})"


def parse_retry_policy(value: Any, *, field: str = "retryPolicy") -> RetryPolicy | None:
    """A :class:`RetryPolicy` from its JSON object; keys left out keep their defaults.

    Args:
        value: the decoded JSON value; ``None`` means "not given".
        field: the name used in messages (``retryPolicy``).

    Returns:
        The policy, or ``None`` when ``value`` is ``None`` or the policy equals the
        default (so ``{}`` is stored and echoed as "not given").

    Raises:
        OptionError: every problem found, each naming ``<field>.<key>``: a key that is not
            a policy knob, a value of the wrong type or out of range, or ``maxDelayMs``
            below ``initialDelayMs``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise OptionError([f"{field} must be an object, got {go_kind(value)}"])
    errors: list[str] = []
    values: dict[str, Any] = {}
    by_wire = {spec.wire: spec for spec in _NUMBERS}
    for key, member in value.items():
        name = f"{field}.{key}"
        parsed: Any
        if member is None and (key in by_wire or key in ("backoff", "jitter")):
            continue  # null keeps the default, as Go's decoder does for the original fields
        if key in by_wire:
            parsed, error = _number(name, by_wire[key], member)
            attr = by_wire[key].attr
        elif key == "backoff":
            parsed, error = _enum(name, member, BACKOFFS)
            attr = "backoff"
        elif key == "jitter":
            parsed, error = _bool(name, member)
            attr = "jitter"
        else:
            errors.append(_unknown_key(field, key))
            continue
        if error is not None:
            errors.append(error)
        else:
            values[attr] = parsed
    if errors:
        raise OptionError(errors)
    policy = RetryPolicy(
        **{attr: _canonical(_RETRY_DEFAULTS, attr, v) for attr, v in values.items()}
    )
    if policy.max_delay_ms < policy.initial_delay_ms:
        given = "" if "max_delay_ms" in values else ", the default"
        raise OptionError(
            [
                f"{field}.maxDelayMs ({policy.max_delay_ms}{given}) must be at least "
                f"{field}.initialDelayMs ({policy.initial_delay_ms})"
            ]
        )
    return None if policy == RetryPolicy() else policy


# -- subscriptions --------------------------------------------------------------------------

_ASYNC_ONLY: Final = (
    "{} is only for async subscriptions (a sync subscription is called once, "
    "while the request waits)"
)


def subscription_options(
    fields: Mapping[str, Any], *, subscription_type: str
) -> SubscriptionOptions:
    """Validate a subscription body's ``delivery``, ``retryPolicy`` and ``ordered``.

    Args:
        fields: the decoded body fields by JSON name; absent or ``null`` means not given.
        subscription_type: ``"async"`` or ``"sync"``; sync subscriptions refuse a
            non-default ``delivery``, any ``retryPolicy`` and ``ordered: true``.

    Returns:
        The validated options.

    Raises:
        OptionError: every problem found, each naming its field.
    """
    errors: list[str] = []
    delivery: str = _DEFAULT_DELIVERY
    if fields.get("delivery") is not None:
        parsed, error = _enum("delivery", fields["delivery"], DELIVERY_MODES)
        if error is not None:
            errors.append(error)
        elif parsed is not None:
            delivery = _canonical(_SUBSCRIPTION_DEFAULTS, "delivery", parsed)
    retry_policy: RetryPolicy | None = None
    try:
        retry_policy = parse_retry_policy(fields.get("retryPolicy"))
    except OptionError as exc:
        errors.extend(exc.messages)
    ordered = False
    if fields.get("ordered") is not None:
        flag, error = _bool("ordered", fields["ordered"])
        if error is not None:
            errors.append(error)
        else:
            ordered = bool(flag)
    if subscription_type == "sync":
        # Only values that would change something are refused, so a body copied from a
        # GET of a sync subscription (which never shows them) always passes.
        if delivery != _DEFAULT_DELIVERY:
            errors.append(_ASYNC_ONLY.format(f"delivery {_show(delivery)}"))
        if fields.get("retryPolicy") is not None:
            errors.append(_ASYNC_ONLY.format("retryPolicy"))
        if ordered:
            errors.append(_ASYNC_ONLY.format("ordered"))
    if errors:
        raise OptionError(errors)
    return SubscriptionOptions(delivery=delivery, retry_policy=retry_policy, ordered=ordered)


# -- functions ------------------------------------------------------------------------------


def _secret_error(field: str, secret: Any) -> str | None:
    if not isinstance(secret, str):
        return f"{field} must be a string, got {go_kind(secret)}"
    if not secret.startswith(SECRET_PREFIX):
        return f'{field} must start with "{SECRET_PREFIX}"'
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return (
            f'{field} must be "{SECRET_PREFIX}" followed by standard base64 '
            "(A-Z a-z 0-9 + /, padded with =)"
        )
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        return f"{field} must encode {low} to {high} bytes, got {len(key)}"
    return None


def _signing_secrets(value: Any, errors: list[str]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        errors.append(f"signingSecrets must be a list of strings, got {go_kind(value)}")
        return None
    if len(value) > MAX_SIGNING_SECRETS:
        errors.append(
            f"signingSecrets may hold at most {MAX_SIGNING_SECRETS} secrets (the current "
            f"one and, while rotating, the next), got {len(value)}"
        )
        return None
    found = [_secret_error(f"signingSecrets[{i}]", s) for i, s in enumerate(value)]
    problems = [e for e in found if e is not None]
    if not problems and len(set(value)) < len(value):
        problems.append("signingSecrets[1] repeats signingSecrets[0]")
    errors.extend(problems)
    # An empty list signs nothing: store it as "not given".
    return list(value) or None


def function_options(fields: Mapping[str, Any]) -> FunctionOptions:
    """Validate a function body's ``signingSecrets`` and ``contentMode``.

    Args:
        fields: the decoded body fields by JSON name; absent or ``null`` means not given.

    Returns:
        The validated options; an empty ``signingSecrets`` list becomes ``None``.

    Raises:
        OptionError: every problem found, each naming its field (and a secret's index,
            never its value).
    """
    errors: list[str] = []
    secrets = _signing_secrets(fields.get("signingSecrets"), errors)
    content_mode: str = _FUNCTION_DEFAULTS["content_mode"]
    if fields.get("contentMode") is not None:
        parsed, error = _enum("contentMode", fields["contentMode"], CONTENT_MODES)
        if error is not None:
            errors.append(error)
        elif parsed is not None:
            content_mode = _canonical(_FUNCTION_DEFAULTS, "content_mode", parsed)
    if errors:
        raise OptionError(errors)
    return FunctionOptions(signing_secrets=secrets, content_mode=content_mode)
