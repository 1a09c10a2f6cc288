"""``provider:`` defaults and ``functions:`` of a resolved ``serverless.yml`` → specs.

Used by :mod:`eventgateway.deploy.manifest`; every message points at the file and line
through :class:`~eventgateway.deploy.manifest_source.Source`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from eventgateway.deploy.manifest_connectors import CONNECTOR_TYPES, connector_provider
from eventgateway.deploy.manifest_events import AuthorizerUse, read_events
from eventgateway.deploy.manifest_source import Source
from eventgateway.deploy.model import FunctionSpec, SubscriptionSpec
from eventgateway.deploy.variables import KeyPath
from eventgateway.model.delivery_options import CONTENT_MODES
from eventgateway.model.runtime_provider import RUNTIMES

__all__ = [
    "AWS_FUNCTION_KEYS",
    "AWS_PROVIDER_KEYS",
    "RUNTIMES",
    "FunctionDefaults",
    "ServiceFunctions",
    "read_functions",
    "read_provider",
    "runtime_type",
]

PROVIDER_KEYS: Final = frozenset(
    {"name", "runtime", "stage", "memorySize", "timeout", "environment"}
)
# Accepted and ignored: they configure AWS, which eg does not deploy to (but `region` is
# that of connector functions).
AWS_PROVIDER_KEYS: Final = frozenset(
    {
        "region", "profile", "iam", "iamRoleStatements", "iamManagedPolicies", "role",
        "rolePermissionsBoundary", "cfnRole", "deploymentBucket", "deploymentPrefix",
        "deploymentMethod", "stackName", "stackTags", "stackPolicy", "stackParameters",
        "tags", "apiName", "apiGateway", "httpApi", "websocketsApiName",
        "websocketsApiRouteSelectionExpression", "websocketsDescription", "websocket",
        "alb", "cloudFront", "vpc", "versionFunctions", "logRetentionInDays", "logs",
        "logDataProtectionPolicy", "tracing", "architecture", "layers",
        "lambdaHashingVersion", "endpointType", "eventBridge", "kmsKeyArn",
        "notificationArns", "s3", "ecr", "disableRollback", "rollbackConfiguration",
        "runtimeManagement", "ephemeralStorage", "usagePlan", "apiKeys", "resourcePolicy",
        "vpcEndpointIds", "environmentFile",
    }
)  # fmt: skip
FUNCTION_KEYS: Final = frozenset(
    {
        "handler", "runtime", "memorySize", "timeout", "environment", "name", "description",
        "concurrency", "type", "url", "signingSecrets", "contentMode", "events", "package",
        "inputs", "image",
    }
)  # fmt: skip
AWS_FUNCTION_KEYS: Final = frozenset(
    {
        "role", "tags", "layers", "vpc", "reservedConcurrency", "provisionedConcurrency",
        "tracing", "architecture", "onError", "destinations", "fileSystemConfig",
        "kmsKeyArn", "maximumEventAge", "maximumRetryAttempts", "disableLogs",
        "logRetentionInDays", "logDataProtectionPolicy", "ephemeralStorage", "snapStart",
        "condition", "dependsOn", "versionFunction", "runtimeManagement", "logs",
    }
)  # fmt: skip
_HTTP_IGNORED: Final = ("handler", "runtime", "memorySize", "timeout", "environment", "concurrency")
_SUPPORTED_RUNTIMES: Final = ", ".join(RUNTIMES)
_HANDLER: Final = re.compile(r"[A-Za-z0-9_\-./]+\.[A-Za-z_$][A-Za-z0-9_$]*")
_ID: Final = re.compile(r"[a-zA-Z0-9.\-_]+")  # the gateway's function.ID rule
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MEMORY_MB: Final = (128, 10_240)
_TIMEOUT_S: Final = (1, 900)
# The gateway refuses more than 100 (model/runtime_provider.py); say so before deploying.
_CONCURRENCY: Final = (1, 100)


@dataclass(frozen=True, slots=True)
class FunctionDefaults:
    """What ``provider:`` sets for every function; ``None``: not in the file."""

    runtime: str | None = None
    memory_size: int | None = None
    timeout_s: int | None = None
    environment: dict[str, str] = field(default_factory=dict)
    region: str | None = None  # of connector functions' targets


@dataclass(frozen=True, slots=True)
class ServiceFunctions:
    """The functions, their subscriptions and the authorizers named on events, in file order."""

    functions: tuple[FunctionSpec, ...]
    subscriptions: tuple[SubscriptionSpec, ...]
    authorizers: tuple[AuthorizerUse, ...]


def runtime_type(runtime: str) -> str | None:
    """``python3.11`` → ``python``, ``nodejs20.x`` → ``nodejs``; ``None`` if unsupported.

    Only Lambda's own runtimes are supported: ``python3.8`` to ``python3.14`` and
    ``nodejs14.x`` to ``nodejs24.x`` (:data:`RUNTIMES`).
    """
    return RUNTIMES.get(runtime)


def _runtime(value: Any, path: KeyPath, src: Source) -> str | None:
    runtime = src.text(value, path)
    if runtime is not None and runtime_type(runtime) is None:
        raise src.error(
            path,
            f"runtime {runtime!r} is not a Lambda runtime eg supports; use one of "
            f"{_SUPPORTED_RUNTIMES}",
        )
    return runtime


def _environment(value: Any, path: KeyPath, src: Source) -> dict[str, str]:
    environment: dict[str, str] = {}
    for name, item in src.mapping(value, path).items():
        at = (*path, name)
        if not _ENV_NAME.fullmatch(name):
            raise src.error(at, "is not a valid variable name (letters, digits, _; no digit first)")
        if isinstance(item, bool):
            environment[name] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            environment[name] = str(item)
        else:
            raise src.error(
                at,
                f"must be a string, got {'nothing (null)' if item is None else type(item).__name__}"
                "; an unset ${env:…} resolves to nothing: give it a default, ${env:NAME, ''}",
            )
        if "\0" in environment[name]:  # the OS cannot pass it to the function's process
            raise src.error(at, "must not contain a NUL character (\\0)")
    return environment


def _sizes(body: dict[str, Any], path: KeyPath, src: Source) -> tuple[int | None, int | None]:
    memory = body.get("memorySize")
    timeout = body.get("timeout")
    return (
        None if memory is None else src.integer(memory, (*path, "memorySize"), *_MEMORY_MB, "MB"),
        None
        if timeout is None
        else src.integer(timeout, (*path, "timeout"), *_TIMEOUT_S, "seconds"),
    )


def read_provider(value: Any, src: Source) -> FunctionDefaults:
    """``provider:`` → the defaults of every function (``name`` and ``stage`` are checked
    here but used by the caller)."""
    path: KeyPath = ("provider",)
    provider = src.mapping(value, path)
    src.check_keys(provider, path, PROVIDER_KEYS | AWS_PROVIDER_KEYS)
    name = src.text(provider.get("name"), (*path, "name"))
    if name is not None and name not in ("eventgateway", "aws"):
        src.warn(
            (*path, "name"),
            f"provider {name!r} is not eventgateway or aws; eg deploys the functions to the "
            "gateway's own runtimes all the same",
        )
    memory, timeout = _sizes(provider, path, src)
    return FunctionDefaults(
        runtime=_runtime(provider.get("runtime"), (*path, "runtime"), src),
        memory_size=memory,
        timeout_s=timeout,
        environment=_environment(provider.get("environment"), (*path, "environment"), src),
        region=src.text(provider.get("region"), (*path, "region")),
    )


def _options(body: dict[str, Any], path: KeyPath, src: Source) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if body.get("signingSecrets") is not None:
        options["signingSecrets"] = list(
            src.strings(body["signingSecrets"], (*path, "signingSecrets"))
        )
    mode = body.get("contentMode")
    if mode is not None:
        if mode not in CONTENT_MODES:
            raise src.error((*path, "contentMode"), f"must be structured or binary, got {mode!r}")
        options["contentMode"] = mode
    return options


def _http_provider(body: dict[str, Any], path: KeyPath, src: Source) -> dict[str, Any]:
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise src.error(
            (*path, "url"),
            "type: http needs url: with the function's http:// or https:// address"
            + ("" if url is None else f", got {url!r}"),
        )
    for key in _HTTP_IGNORED:
        if key in body:
            src.warn((*path, key), "ignored for type: http (the function runs at its url)")
    return {"url": url}


def _runtime_provider(
    key: str, body: dict[str, Any], defaults: FunctionDefaults, src: Source
) -> tuple[str, dict[str, Any]]:
    path: KeyPath = ("functions", key)
    if body.get("image") is not None and body.get("handler") is None:
        raise src.error((*path, "image"), "container images are not supported by eg; use a handler")
    handler = src.text(body.get("handler"), (*path, "handler"))
    if handler is None:
        hint = " (or type: http to call its url)" if isinstance(body.get("url"), str) else ""
        raise src.error(
            path, f"has no handler; add handler: <file>.<function>, e.g. handler.handler{hint}"
        )
    if not _HANDLER.fullmatch(handler):
        raise src.error(
            (*path, "handler"),
            f"handler {handler!r} must look like <path/module>.<function>, "
            "e.g. handler.handler or src/users.create",
        )
    if any(part in ("", ".", "..") for part in handler.rsplit(".", 1)[0].split("/")):
        raise src.error(
            (*path, "handler"),
            f"handler {handler!r} must name a file inside the service directory, "
            "as a relative path without . or .. segments, e.g. src/users.create",
        )
    runtime = _runtime(body.get("runtime"), (*path, "runtime"), src) or defaults.runtime
    if runtime is None:
        raise src.error(
            path,
            f"has no runtime; set provider.runtime (or functions.{key}.runtime) to one of "
            f"{_SUPPORTED_RUNTIMES}",
        )
    provider: dict[str, Any] = {"handler": handler, "runtime": runtime}
    memory, timeout = _sizes(body, path, src)
    # Only what the file sets, so the gateway's defaults apply and redeploys compare equal.
    memory = defaults.memory_size if memory is None else memory
    timeout = defaults.timeout_s if timeout is None else timeout
    if memory is not None:
        provider["memorySize"] = memory
    if timeout is not None:
        provider["timeout"] = timeout
    if body.get("concurrency") is not None:
        provider["concurrency"] = src.integer(
            body["concurrency"], (*path, "concurrency"), *_CONCURRENCY, "concurrent calls"
        )
    environment = {
        **defaults.environment,
        **_environment(body.get("environment"), (*path, "environment"), src),
    }
    if environment:
        provider["environment"] = environment
    return runtime_type(runtime) or "", provider


def _function(key: str, value: Any, defaults: FunctionDefaults, src: Source) -> FunctionSpec:
    path: KeyPath = ("functions", key)
    if value is None:
        raise src.error(path, "is empty; give it a handler, e.g. handler: handler.handler")
    body = src.mapping(value, path)
    src.check_keys(body, path, FUNCTION_KEYS | AWS_FUNCTION_KEYS)
    function_id = src.text(body.get("name"), (*path, "name")) or key
    if not _ID.fullmatch(function_id):
        raise src.error(
            (*path, "name") if "name" in body else path,
            f"function id {function_id!r} may hold only letters, digits, '.', '-' and '_'; "
            "rename it or set name:",
        )
    if body.get("package") is not None:
        src.warn((*path, "package"), "not supported; the service's package.patterns apply")
    kind = body.get("type")
    if kind in CONNECTOR_TYPES:
        function_type = str(kind)
        provider = connector_provider(function_type, body, path, defaults.region, src)
    elif kind == "http":
        function_type, provider = "http", _http_provider(body, path, src)
    elif kind is None:
        function_type, provider = _runtime_provider(key, body, defaults, src)
    else:
        raise src.error(
            (*path, "type"),
            f"type {kind!r} is not supported; use type: http (with url:) for a function "
            "behind a URL, type: awssqs, awskinesis or awsfirehose (with inputs:) for a "
            "queue or stream, or leave type out for code the gateway runs (handler:)",
        )
    return FunctionSpec(
        key=key,
        function_id=function_id,
        type=function_type,
        provider=provider,
        options=_options(body, path, src),
        line=src.line(path),
    )


def read_functions(
    value: Any, defaults: FunctionDefaults, space: str, src: Source
) -> ServiceFunctions:
    """``functions:`` → specs, subscriptions and event authorizers, in file order.

    Raises:
        ConfigError: a function or event is invalid, two functions share an id, or two
            subscriptions are the same.
    """
    functions: list[FunctionSpec] = []
    subscriptions: list[tuple[SubscriptionSpec, KeyPath]] = []
    authorizers: list[AuthorizerUse] = []
    ids: dict[str, str] = {}
    if value is None:
        src.warn(("functions",), "no functions: there is nothing to deploy")
    for key, body in src.mapping(value, ("functions",)).items():
        function = _function(key, body, defaults, src)
        if function.function_id in ids:
            first = ids[function.function_id]
            raise src.error(
                ("functions", key),
                f"function id {function.function_id!r} is also the id of functions.{first} "
                f"(line {src.line(('functions', first))}); give one of them another name:",
            )
        ids[function.function_id] = key
        functions.append(function)
        events = body.get("events") if isinstance(body, dict) else None
        found, named = read_events(events, ("functions", key, "events"), function, space, src)
        subscriptions.extend(found)
        authorizers.extend(named)
    _check_unique(subscriptions, src)
    return ServiceFunctions(
        tuple(functions), tuple(sub for sub, _ in subscriptions), tuple(authorizers)
    )


def _check_unique(subscriptions: list[tuple[SubscriptionSpec, KeyPath]], src: Source) -> None:
    # The gateway's identities (contract 4.2): sync ignores the function, async includes it.
    seen: dict[tuple[str, ...], tuple[SubscriptionSpec, KeyPath]] = {}
    for sub, path in subscriptions:
        function = sub.function_id if sub.type == "async" else ""
        identity = (sub.type, sub.event_type, sub.path, sub.method, function)
        first, first_path = seen.setdefault(identity, (sub, path))
        if first is sub:
            continue
        what = f"{sub.type} {sub.event_type} {sub.method} {sub.path}"
        fix = (
            "remove one"
            if first.function_id == sub.function_id
            else "a sync path and method can be served by one function only"
        )
        raise src.error(
            path,
            f"is the same subscription ({what}) as {first.where} "
            f"(line {src.line(first_path)}); {fix}",
        )
