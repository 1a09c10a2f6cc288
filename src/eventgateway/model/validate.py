"""Request bodies → normalised, validated configuration entities (pure; no store access).

Every function here decodes a body the way the original's Go decoder did (see
:mod:`eventgateway.model.gojson`), applies the original's normalisation, validates with
the original's rules and raises :class:`~eventgateway.errors.ValidationError` with the
original's message template, e.g.
``Function doesn't validate. Validation error: Key: 'Function.ID' Error:Field validation
for 'ID' failed on the 'required' tag``. Rules that need the store (duplicates, existence
of referenced entities, immutable fields) live in ``api/resources.py``.

The fields eventgateway adds (a subscription's ``delivery``, ``retryPolicy``, ``ordered``
and ``filter``; a function's ``signingSecrets`` and ``contentMode``) are checked by
:mod:`eventgateway.model.delivery_options` and :mod:`eventgateway.model.subscription_filter`
only after the original's rules pass, so a body the original refused gets the original's
message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from eventgateway.errors import ValidationError
from eventgateway.model.delivery_options import (
    OptionError,
    function_options,
    subscription_options,
)
from eventgateway.model.entities import Cors, EventType, Function, Subscription
from eventgateway.model.gojson import (
    FieldSpec,
    GoJSONError,
    GoNumberError,
    StructSpec,
    as_bool,
    as_raw,
    as_string,
    as_string_list,
    as_string_map,
    decode_struct,
    decode_value,
)
from eventgateway.model.gojson_numbers import refused_number_message
from eventgateway.model.ids import cors_id, subscription_id
from eventgateway.model.providers import PROVIDER_TYPES, ProviderConfigError, normalise_provider
from eventgateway.model.runtime_provider import (
    RUNTIME_TYPES,
    RuntimeProviderError,
    normalise_runtime_provider,
)
from eventgateway.model.subscription_filter import parse_filter
from eventgateway.names import MAX_NAME_CHARS, NAME_RE, is_valid_space

__all__ = [
    "CORS_DEFAULTS",
    "METHODS",
    "Body",
    "is_valid_space",
    "parse_cors",
    "parse_event_type",
    "parse_function",
    "parse_subscription",
]

Body = bytes | Mapping[str, Any] | None
"""A request body: raw bytes as received, or an already decoded JSON object."""

METHODS: Final[tuple[str, ...]] = ("GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS")
_METHODS_TAG: Final = "|".join(f"eq={m}" for m in METHODS)

CORS_DEFAULTS: Final[dict[str, tuple[str, ...]]] = {
    "allowedOrigins": ("*",),
    "allowedMethods": ("HEAD", "GET", "POST"),
    "allowedHeaders": ("Origin", "Accept", "Content-Type"),
}

_NAME_RE: Final = NAME_RE

_EVENT_TYPE_PREFIX: Final = "Event Type doesn't validate. Validation error: "
_FUNCTION_PREFIX: Final = "Function doesn't validate. Validation error: "
_SUBSCRIPTION_PREFIX: Final = "Subscription doesn't validate. Validation error: "
_CORS_PREFIX: Final = "CORS configuration doesn't validate. Validation error: "

# Fields of eventgateway's own whose refused numbers are named by path: the original's
# fields keep Go's message, which names no field.
_NAMED_NUMBER_FIELDS: Final = frozenset({"filter"})

_METADATA = FieldSpec("metadata", as_string_map, null_clears=True)
_SPACE = FieldSpec("space", as_string())

_EVENT_TYPE_STRUCT: Final = StructSpec(
    "event.Type",
    "Type",
    (
        _SPACE,
        FieldSpec("name", as_string("event.TypeName")),
        FieldSpec("authorizerId", as_string("function.ID"), null_clears=True),
        _METADATA,
    ),
)
# The original decoded functions through an alias type, hence the odd struct name.
_FUNCTION_STRUCT: Final = StructSpec(
    "function.functionJSON",
    "functionJSON",
    (
        _SPACE,
        FieldSpec("functionId", as_string("function.ID")),
        FieldSpec("type", as_string("function.ProviderType")),
        FieldSpec("provider", as_raw, null_clears=True),
        _METADATA,
        # Added fields arrive raw: delivery_options checks them with its own messages.
        FieldSpec("signingSecrets", as_raw, null_clears=True),
        FieldSpec("contentMode", as_raw, null_clears=True),
    ),
)
_SUBSCRIPTION_STRUCT: Final = StructSpec(
    "subscription.Subscription",
    "Subscription",
    (
        _SPACE,
        FieldSpec("subscriptionId", as_string("subscription.ID")),
        FieldSpec("type", as_string("subscription.Type")),
        FieldSpec("eventType", as_string("event.TypeName")),
        FieldSpec("functionId", as_string("function.ID")),
        FieldSpec("path", as_string()),
        FieldSpec("method", as_string()),
        _METADATA,
        FieldSpec("delivery", as_raw, null_clears=True),
        FieldSpec("retryPolicy", as_raw, null_clears=True),
        FieldSpec("ordered", as_raw, null_clears=True),
        FieldSpec("filter", as_raw, null_clears=True),
    ),
)
_CORS_STRUCT: Final = StructSpec(
    "cors.CORS",
    "CORS",
    (
        _SPACE,
        FieldSpec("corsId", as_string("cors.ID")),
        FieldSpec("method", as_string()),
        FieldSpec("path", as_string()),
        FieldSpec("allowedOrigins", as_string_list, null_clears=True),
        FieldSpec("allowedMethods", as_string_list, null_clears=True),
        FieldSpec("allowedHeaders", as_string_list, null_clears=True),
        FieldSpec("allowCredentials", as_bool),
        _METADATA,
    ),
)


def _tag_error(struct: str, field: str, tag: str) -> str:
    # go-playground/validator's FieldError text.
    return f"Key: '{struct}.{field}' Error:Field validation for '{field}' failed on the '{tag}' tag"


def _space_errors(struct: str, space: str) -> list[str]:
    if not space:
        return [_tag_error(struct, "Space", "required")]
    if len(space) < 3:
        return [_tag_error(struct, "Space", "min")]
    if len(space) > MAX_NAME_CHARS:
        return [_tag_error(struct, "Space", "max")]
    if _NAME_RE.fullmatch(space) is None:
        return [_tag_error(struct, "Space", "space")]
    return []


def _decode(body: Body, struct: StructSpec, prefix: str) -> dict[str, Any]:
    try:
        value = decode_value(body) if isinstance(body, bytes) else body
        return decode_struct(value, struct)
    except GoNumberError as exc:
        message = str(exc)
        if isinstance(body, bytes):  # always: only decode_value raises it
            message = refused_number_message(exc, body, struct, _NAMED_NUMBER_FIELDS)
        raise ValidationError(prefix + message) from exc
    except GoJSONError as exc:
        raise ValidationError(prefix + str(exc)) from exc


def _fail_if(errors: list[str], prefix: str) -> None:
    if errors:
        raise ValidationError(prefix + "\n".join(errors))


def _fail_on_options(exc: OptionError, prefix: str) -> ValidationError:
    return ValidationError(prefix + "\n".join(exc.messages))


def _metadata(fields: Mapping[str, Any]) -> dict[str, str] | None:
    # Empty metadata is omitted from responses, as the original's omitempty did.
    metadata: dict[str, str] | None = fields.get("metadata") or None
    return metadata


def parse_event_type(space: str, body: Body, *, name: str | None = None) -> EventType:
    """An event type from a create (``name`` from the body) or update (``name`` from the URL).

    Raises:
        ValidationError: ``Event Type doesn't validate. Validation error: …``.
    """
    fields = _decode(body, _EVENT_TYPE_STRUCT, _EVENT_TYPE_PREFIX)
    if name is None:
        name = fields.get("name", "")
    errors = _space_errors("Type", space)
    if not name:
        errors.append(_tag_error("Type", "Name", "required"))
    elif len(name) > MAX_NAME_CHARS:
        errors.append(_tag_error("Type", "Name", "max"))
    _fail_if(errors, _EVENT_TYPE_PREFIX)
    return EventType(
        space=space,
        name=name,
        authorizer_id=fields.get("authorizerId"),
        metadata=_metadata(fields),
    )


def parse_function(space: str, body: Body, *, function_id: str | None = None) -> Function:
    """A function from a create (ID from the body) or update (ID from the URL).

    The provider configuration is checked and normalised per type before the ID and space
    are validated, in the original's order; ``signingSecrets`` and ``contentMode`` last.

    Raises:
        ValidationError: ``Function doesn't validate. Validation error: …``, e.g.
            ``signingSecrets[0] must start with "whsec_"``.
    """
    fields = _decode(body, _FUNCTION_STRUCT, _FUNCTION_PREFIX)
    type_ = fields.get("type", "")
    if not type_:
        raise ValidationError(_FUNCTION_PREFIX + "provider configuration not set")
    if type_ not in PROVIDER_TYPES and type_ not in RUNTIME_TYPES:
        raise ValidationError(f"{_FUNCTION_PREFIX}provider {type_} not supported")
    if "provider" not in fields:
        # The original crashed here (nil pointer); a clear 400 is the deliberate fix.
        raise ValidationError(_FUNCTION_PREFIX + "provider configuration not set")
    provider: dict[str, Any]
    try:
        if type_ in RUNTIME_TYPES:
            provider = normalise_runtime_provider(type_, fields["provider"])
        else:
            provider = dict(normalise_provider(type_, fields["provider"]))
    except (ProviderConfigError, RuntimeProviderError) as exc:
        raise ValidationError(_FUNCTION_PREFIX + str(exc)) from exc
    if function_id is None:
        function_id = fields.get("functionId", "")
    errors = _space_errors("Function", space)
    if not function_id:
        errors.append(_tag_error("Function", "ID", "required"))
    elif _NAME_RE.fullmatch(function_id) is None:
        errors.append(_tag_error("Function", "ID", "functionid"))
    elif len(function_id) > MAX_NAME_CHARS:
        errors.append(_tag_error("Function", "ID", "max"))
    _fail_if(errors, _FUNCTION_PREFIX)
    try:
        options = function_options(fields)
    except OptionError as exc:
        raise _fail_on_options(exc, _FUNCTION_PREFIX) from exc
    return Function(
        space=space,
        function_id=function_id,
        type=type_,
        provider=provider,
        metadata=_metadata(fields),
        signing_secrets=options.signing_secrets,
        content_mode=options.content_mode,
    )


def parse_subscription(space: str, body: Body) -> Subscription:
    """A subscription, normalised (leading ``/``, upper-case method, ``POST`` default).

    The returned ``subscription_id`` is the deterministic ID of the normalised fields; an
    update keeps the ID from its URL instead (``api/resources.py`` does that).
    ``delivery``, ``retryPolicy``, ``ordered`` and ``filter`` are checked last and only
    async subscriptions may change them from their defaults.

    Raises:
        ValidationError: ``Subscription doesn't validate. Validation error: …``, e.g.
            ``retryPolicy.maxAttempts must be between 1 and 1000, got 0`` or
            ``filter.data.plan: "numeric" needs operator/number pairs…``.
    """
    fields = _decode(body, _SUBSCRIPTION_STRUCT, _SUBSCRIPTION_PREFIX)
    path = fields.get("path", "")
    if not path.startswith("/"):
        path = "/" + path
    method = fields.get("method", "").upper() or "POST"
    type_ = fields.get("type", "")
    event_type = fields.get("eventType", "")
    function_id = fields.get("functionId", "")

    errors = _space_errors("Subscription", space)
    if not type_:
        errors.append(_tag_error("Subscription", "Type", "required"))
    elif type_ not in ("async", "sync"):
        errors.append(_tag_error("Subscription", "Type", "eq=async|eq=sync"))
    if not event_type:
        errors.append(_tag_error("Subscription", "EventType", "required"))
    elif _NAME_RE.fullmatch(event_type) is None:
        errors.append(_tag_error("Subscription", "EventType", "eventType"))
    elif len(event_type) > MAX_NAME_CHARS:
        errors.append(_tag_error("Subscription", "EventType", "max"))
    if not function_id:
        errors.append(_tag_error("Subscription", "FunctionID", "required"))
    elif len(function_id) > MAX_NAME_CHARS:
        errors.append(_tag_error("Subscription", "FunctionID", "max"))
    if method not in METHODS:
        errors.append(_tag_error("Subscription", "Method", _METHODS_TAG))
    _fail_if(errors, _SUBSCRIPTION_PREFIX)
    try:
        options = subscription_options(fields, subscription_type=type_)
        pattern = parse_filter(fields.get("filter"), subscription_type=type_)
    except OptionError as exc:
        raise _fail_on_options(exc, _SUBSCRIPTION_PREFIX) from exc

    return Subscription(
        space=space,
        subscription_id=subscription_id(
            type=type_, event_type=event_type, function_id=function_id, path=path, method=method
        ),
        type=type_,
        event_type=event_type,
        function_id=function_id,
        path=path,
        method=method,
        metadata=_metadata(fields),
        delivery=options.delivery,
        retry_policy=options.retry_policy,
        ordered=options.ordered,
        filter=pattern,
    )


def parse_cors(space: str, body: Body) -> Cors:
    """A CORS configuration with the original's defaults for empty lists.

    ``method`` is not upper-cased and ``path`` is not prefixed: both must already be
    right (``get`` → 400). The returned ``cors_id`` is derived from them.

    Raises:
        ValidationError: ``CORS configuration doesn't validate. Validation error: …``.
    """
    fields = _decode(body, _CORS_STRUCT, _CORS_PREFIX)
    method = fields.get("method", "")
    path = fields.get("path", "")
    errors = _space_errors("CORS", space)
    if method not in METHODS:
        errors.append(_tag_error("CORS", "Method", _METHODS_TAG))
    if not path.startswith("/"):
        errors.append(_tag_error("CORS", "Path", "path"))
    _fail_if(errors, _CORS_PREFIX)

    lists = {name: list(fields.get(name) or default) for name, default in CORS_DEFAULTS.items()}
    return Cors(
        space=space,
        cors_id=cors_id(method, path),
        method=method,
        path=path,
        allowed_origins=lists["allowedOrigins"],
        allowed_methods=lists["allowedMethods"],
        allowed_headers=lists["allowedHeaders"],
        allow_credentials=bool(fields.get("allowCredentials", False)),
        metadata=_metadata(fields),
    )
