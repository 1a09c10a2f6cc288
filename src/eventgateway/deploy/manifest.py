"""``serverless.yml`` → :class:`~eventgateway.deploy.model.ServiceSpec` for ``eg deploy``.

The file is the one Serverless Framework users already write for the Event Gateway
plugin (contract §6.1), plus eventgateway's extensions. Reading it is the only I/O.
Errors and warnings name the file, the line and the key path, e.g.
``serverless.yml:12: functions.addUserToCRM.handler: handler 'x' must look like …``.
:mod:`~eventgateway.deploy.manifest_functions`,
:mod:`~eventgateway.deploy.manifest_connectors` and
:mod:`~eventgateway.deploy.manifest_events` read ``functions:``.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from eventgateway.deploy.manifest_connectors import uses_connectors
from eventgateway.deploy.manifest_functions import (
    AWS_FUNCTION_KEYS,
    AWS_PROVIDER_KEYS,
    ServiceFunctions,
    read_functions,
    read_provider,
)
from eventgateway.deploy.manifest_source import Source, file_reader, read_source
from eventgateway.deploy.model import DEFAULT_SPACE, EventTypeSpec, GatewayTarget, ServiceSpec
from eventgateway.deploy.variables import (
    KeyPath,
    VariableError,
    VariableSources,
    effective_stage,
    resolve_variables,
)
from eventgateway.model.validate import is_valid_space

__all__ = ["gateway_setting", "is_http_url", "load_service"]

_USED: Final = frozenset({"service", "provider", "functions", "custom", "package"})
# Known to the Serverless Framework; eg has no use for them, so their variables are not
# resolved either (`resources:` is full of CloudFormation's `${AWS::Region}`).
_IGNORED: Final = frozenset(
    {
        "plugins", "frameworkVersion", "resources", "layers", "useDotenv",
        "configValidationMode", "variablesResolutionMode", "tenant", "app", "org",
        "outputs", "params", "stages", "deprecationNotificationMode",
        "disabledDeprecations", "unresolvedVariablesNotificationMode", "console",
        "dashboard", "build", "licenseKey",
    }
)  # fmt: skip
_GATEWAY_KEYS: Final = frozenset(
    {"url", "configurationUrl", "space", "apiKey", "accessKey", "eventTypes"}
)
_PACKAGE_KEYS: Final = frozenset(
    {"patterns", "include", "exclude", "individually", "artifact", "excludeDevDependencies"}
)
_STAGE: Final = re.compile(r"[A-Za-z0-9_-]+")
# Letters and digits of any script (IDNA hosts), plus the unreserved marks of RFC 3986;
# no space, quote or other character a request line could not carry.
_HOST: Final = re.compile(r"[\w.~-]+")


def _skip(path: KeyPath, *, region: bool = False) -> bool:
    """Whether variables at ``path`` are left alone: parts eg never reads (AWS settings,
    other plugins' ``custom:`` sections, non-gateway events), which often use sources eg
    cannot resolve (``${ssm:…}``, ``${cf:…}``). ``${self:…}`` still resolves them on demand.
    ``provider.region`` is read (``region``) when the file has connector functions."""
    match path:
        case (str(top),):
            return top in _IGNORED
        case ("provider", str(key)):
            return key in AWS_PROVIDER_KEYS and not (region and key == "region")
        case ("custom", str(key)):
            return key not in ("eventgateway", "eventTypes")
        case ("functions", _, str(key)):
            return key in AWS_FUNCTION_KEYS
        case ("functions", _, "events", int(), str(kind)):
            return kind != "eventgateway"
    return False


def load_service(
    path: pathlib.Path,
    *,
    stage: str | None = None,
    options: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServiceSpec:
    """Read, resolve and validate a ``serverless.yml``.

    Args:
        path: the file (a directory means its ``serverless.yml``); messages name it as given.
        stage: ``--stage``; wins over ``options["stage"]``, ``provider.stage`` and ``dev``.
        options: the command-line options ``${opt:NAME}`` reads.
        environ: what ``${env:NAME}`` reads; default ``os.environ``.

    Returns:
        The service, with warnings (unknown keys, ignored events) in ``warnings``.

    Raises:
        ConfigError: ``<file>:<line>: <key path>: <what is wrong and the fix>``; also
            when the file is missing or is not valid YAML.
    """
    options = dict(options or {})
    data, src = read_source(path)
    if not isinstance(data, dict):
        raise src.error((), "must be a mapping with service:, provider: and functions:")
    sources = VariableSources(
        environ=os.environ if environ is None else environ,
        options=options,
        stage=stage,
        read_file=file_reader(pathlib.Path(src.name).parent),
    )
    try:
        connectors = uses_connectors(data.get("functions"))
        document = resolve_variables(
            data, sources, skip=functools.partial(_skip, region=connectors)
        )
    except VariableError as exc:
        raise src.error(exc.path, exc.detail) from exc
    src.check_keys(document, (), _USED | _IGNORED)

    name = _service_name(document.get("service"), src)
    provider = src.mapping(document.get("provider"), ("provider",))
    defaults = read_provider(provider, src)
    resolved_stage = effective_stage(stage, options, provider.get("stage"))
    if not _STAGE.fullmatch(resolved_stage):
        raise src.error(
            ("provider", "stage"),
            f"stage {resolved_stage!r} may hold only letters, digits, '-' and '_'",
        )
    custom = src.mapping(document.get("custom"), ("custom",))
    gateway_section = src.mapping(custom.get("eventgateway"), ("custom", "eventgateway"))
    gateway = _gateway(gateway_section, src)
    found = read_functions(document.get("functions"), defaults, gateway.space, src)
    event_types = _event_types(custom, gateway_section, found, src)
    patterns = _package(document.get("package"), src)
    return ServiceSpec(
        name=name,
        stage=resolved_stage,
        source=pathlib.Path(src.name),
        gateway=gateway,
        functions=found.functions,
        subscriptions=found.subscriptions,
        event_types=event_types,
        package_patterns=patterns,
        warnings=tuple(src.warnings),
    )


def _service_name(value: Any, src: Source) -> str:
    at: KeyPath = ("service",)
    if isinstance(value, dict):  # the old `service: {name: …}` style
        at, value = (*at, "name"), value.get("name")
    name = src.text(value, at)
    if name is None:
        raise src.error(at, "is missing; name the service, e.g. service: crm-service")
    return name


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an http(s) URL a request can go to: scheme, a host of letters,
    digits, ``.``, ``-``, ``_`` or ``~`` (or an IPv6 literal), a valid port, no whitespace.

    ``eg``'s ``--url``/``--config-url`` flags and ``custom.eventgateway`` share this rule.
    """
    # urlsplit silently drops tabs and newlines, so look at the text as written.
    if any(char.isspace() or not char.isprintable() for char in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError for a port that is not 0-65535
    except ValueError:  # also a bad IPv6 literal
        return False
    host = parts.hostname or ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    if parts.netloc.rpartition("@")[2].startswith("["):
        return True  # urlsplit checked the IPv6 literal already
    return _HOST.fullmatch(host) is not None


def gateway_setting(section: Mapping[str, Any], key: str, src: Source) -> str | None:
    """Setting ``key`` of ``custom.eventgateway`` (variables already resolved), checked.

    The one check of these settings: ``eg deploy`` reads the whole section through it and
    the other ``eg`` commands read one key at a time (``cli/service_file.py``).

    Raises:
        ConfigError: ``<file>:<line>: custom.eventgateway.<key>: <what is wrong>``.
    """
    at: KeyPath = ("custom", "eventgateway", key)
    value = src.text(section.get(key), at)
    if value is None:
        return None
    if key in ("url", "configurationUrl") and not is_http_url(value):
        raise src.error(
            at,
            f"{value!r} is not an http:// or https:// URL with a valid host, "
            "e.g. http://localhost:4000",
        )
    if key == "space" and not is_valid_space(value):
        raise src.error(
            at,
            f"space {value!r} is not valid; use 3 to 255 letters, digits, '.', '-' or '_' "
            "(no '/'), e.g. acme-crm",
        )
    return value


def _gateway(section: dict[str, Any], src: Source) -> GatewayTarget:
    at: KeyPath = ("custom", "eventgateway")
    src.check_keys(section, at, _GATEWAY_KEYS)
    api_key = gateway_setting(section, "apiKey", src)
    access_key = gateway_setting(section, "accessKey", src)
    if api_key is not None and access_key is not None and api_key != access_key:
        src.warn((*at, "accessKey"), "both apiKey and accessKey are set; apiKey is used")
    return GatewayTarget(
        url=gateway_setting(section, "url", src),
        config_url=gateway_setting(section, "configurationUrl", src),
        space=gateway_setting(section, "space", src) or DEFAULT_SPACE,
        api_key=api_key if api_key is not None else access_key,
    )


def _declared(
    custom: dict[str, Any],
    gateway_section: dict[str, Any],
    keys: Mapping[str, str],
    src: Source,
) -> dict[str, tuple[str | None, KeyPath]]:
    """Declared event types → (authorizer function id, where), from both places."""
    declared: dict[str, tuple[str | None, KeyPath]] = {}
    for at, section in (
        (("custom", "eventTypes"), custom.get("eventTypes")),
        (("custom", "eventgateway", "eventTypes"), gateway_section.get("eventTypes")),
    ):
        for name, body in src.mapping(section, at).items():
            where = (*at, name)
            options = src.mapping(body, where)
            src.check_keys(options, where, ("authorizer",))
            authorizer = _authorizer(options.get("authorizer"), (*where, "authorizer"), keys, src)
            _merge(declared, name, authorizer, where, src)
    return declared


def _authorizer(value: Any, at: KeyPath, keys: Mapping[str, str], src: Source) -> str | None:
    key = src.text(value, at)
    if key is None:
        return None
    if key not in keys:
        known = ", ".join(keys) or "none"
        raise src.error(
            at,
            f"authorizer {key!r} is not a function of this service (functions: {known}); "
            "name the key of a function under functions:",
        )
    return keys[key]


def _merge(
    types: dict[str, tuple[str | None, KeyPath]],
    name: str,
    authorizer: str | None,
    where: KeyPath,
    src: Source,
) -> None:
    if name not in types:
        types[name] = (authorizer, where)
        return
    first, first_where = types[name]
    if first is None:
        types[name] = (authorizer, first_where if authorizer is None else where)
    elif authorizer is not None and authorizer != first:
        raise src.error(
            where,
            f"event type {name!r} gets authorizer {authorizer!r} here but {first!r} at line "
            f"{src.line(first_where)}; an event type has one authorizer: keep one",
        )


def _event_types(
    custom: dict[str, Any],
    gateway_section: dict[str, Any],
    found: ServiceFunctions,
    src: Source,
) -> tuple[EventTypeSpec, ...]:
    keys = {function.key: function.function_id for function in found.functions}
    types = _declared(custom, gateway_section, keys, src)
    for subscription in found.subscriptions:
        types.setdefault(subscription.event_type, (None, ()))
    for use in found.authorizers:
        authorizer = _authorizer(use.function_key, use.path, keys, src)
        _merge(types, use.event_type, authorizer, use.path, src)
    return tuple(EventTypeSpec(name, authorizer) for name, (authorizer, _) in types.items())


def _package(value: Any, src: Source) -> tuple[str, ...]:
    at: KeyPath = ("package",)
    package = src.mapping(value, at)
    src.check_keys(package, at, _PACKAGE_KEYS)
    for key in ("individually", "artifact"):
        if package.get(key):
            src.warn((*at, key), "not supported by eg; every function gets the service bundle")

    def listed(key: str) -> tuple[str, ...]:
        found = package.get(key)
        return () if found is None else src.strings(found, (*at, key))

    # As the Serverless Framework does: excludes first, then includes (which win), then
    # patterns; the last matching pattern decides.
    return (
        *(f"!{pattern}" for pattern in listed("exclude")),
        *listed("include"),
        *listed("patterns"),
    )
