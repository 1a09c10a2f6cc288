"""Provider configuration of functions the gateway runs itself (types ``python``, ``nodejs``).

::

    {"bundle": "<sha256 of the uploaded zip>", "handler": "handler.handler",
     "runtime": "python3.11", "memorySize": 1024, "timeout": 6, "concurrency": 4,
     "environment": {"KEY": "value"}}

``bundle`` and ``handler`` are required; the rest have Lambda's defaults (memory 1024 MB
here as in the walkthrough, timeout 6 s as in the Serverless Framework). The echo holds
every key, defaults filled in, in this order, so a redeploy compares equal.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

__all__ = [
    "RUNTIMES",
    "RUNTIME_DEFAULTS",
    "RUNTIME_TYPES",
    "RuntimeLimit",
    "RuntimeProviderError",
    "normalise_runtime_provider",
]

RUNTIME_TYPES: Final = ("python", "nodejs")


class RuntimeLimit(NamedTuple):
    """How many invocations of one local-runtime function may run at once."""

    function: tuple[str, str]  # (space, function id): what its subscriptions share
    concurrency: int


# Lambda's identifiers, so that a serverless.yml stays deployable to AWS; the version only
# labels the function (AWS_EXECUTION_ENV): Python handlers run on the gateway's own
# interpreter, Node.js handlers on the `node` on its PATH (docs/runtime.md).
RUNTIMES: Final = {
    **{f"python3.{minor}": "python" for minor in range(8, 15)},
    **{f"nodejs{major}.x": "nodejs" for major in range(14, 25, 2)},
}

RUNTIME_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "python": {"runtime": "python3.11"},
    "nodejs": {"runtime": "nodejs20.x"},
}
_MEMORY_MB: Final = (128, 10_240, 1024)
_TIMEOUT_S: Final = (1, 900, 6)
_CONCURRENCY: Final = (1, 100, 4)

_BUNDLE = re.compile(r"[0-9a-f]{64}")
_HANDLER = re.compile(r"[A-Za-z0-9_\-./]+\.[A-Za-z_$][A-Za-z0-9_$]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS: Final = (
    "bundle",
    "handler",
    "runtime",
    "memorySize",
    "timeout",
    "concurrency",
    "environment",
)


class RuntimeProviderError(Exception):
    """``str(exc)`` says which provider field is wrong and how to fix it."""


def _number(
    config: dict[str, Any], key: str, bounds: tuple[int, int, int], *, integer: bool
) -> Any:
    low, high, default = bounds
    value = config.get(key)
    if value is None:
        return default
    valid_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not valid_type or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise RuntimeProviderError(
            f"provider.{key} must be {kind} from {low} to {high}, got {value!r}"
        )
    return value


def normalise_runtime_provider(type_: str, config: Any) -> dict[str, Any]:
    """Validate a ``python``/``nodejs`` provider config and return the full echo.

    Raises:
        RuntimeProviderError: naming the field.
    """
    if not isinstance(config, dict):
        raise RuntimeProviderError("provider must be an object with bundle and handler")
    unknown = sorted(set(config) - set(_KEYS))
    if unknown:
        raise RuntimeProviderError(
            f"provider has unknown key(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}"
        )
    bundle = config.get("bundle")
    if not isinstance(bundle, str) or not _BUNDLE.fullmatch(bundle):
        raise RuntimeProviderError(
            "provider.bundle must be the bundleId (sha256 hex) returned by "
            "POST /v1/spaces/{space}/bundles"
        )
    handler = config.get("handler")
    if not isinstance(handler, str) or not _HANDLER.fullmatch(handler):
        raise RuntimeProviderError(
            f"provider.handler must look like 'module.function' (e.g. handler.handler), "
            f"got {handler!r}"
        )
    runtime = config.get("runtime") or RUNTIME_DEFAULTS[type_]["runtime"]
    if not isinstance(runtime, str) or RUNTIMES.get(runtime) != type_:
        supported = ", ".join(name for name, kind in RUNTIMES.items() if kind == type_)
        raise RuntimeProviderError(
            f"provider.runtime {runtime!r} is not a {type_} runtime; use one of {supported}"
        )
    environment = config.get("environment") or {}
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and _ENV_NAME.fullmatch(k) and isinstance(v, str)
        for k, v in environment.items()
    ):
        raise RuntimeProviderError("provider.environment must map variable names to string values")
    for name, value in environment.items():
        if "\0" in value:  # the OS cannot pass it: exec would fail at every invocation
            raise RuntimeProviderError(
                f"provider.environment.{name} must not contain a NUL character (\\u0000)"
            )
    return {
        "bundle": bundle,
        "handler": handler,
        "runtime": runtime,
        "memorySize": _number(config, "memorySize", _MEMORY_MB, integer=True),
        "timeout": _number(config, "timeout", _TIMEOUT_S, integer=False),
        "concurrency": _number(config, "concurrency", _CONCURRENCY, integer=True),
        "environment": dict(environment),
    }
