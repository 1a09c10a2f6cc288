"""``RuntimeProvider``: calls ``python`` and ``nodejs`` functions in the local runtime.

The function's ``provider`` names an uploaded bundle and a handler
(``model/runtime_provider.py``); the call becomes one invocation in a warm worker process
(``runtime/pool.py``). A handler's error — ``errorType: errorMessage`` — fails the call and
goes through the subscription's retry policy like any other failure.

Each call names its invocation for the log store: a reply carries the request id in the
:data:`REQUEST_ID_HEADER` header, a failure in ``ProviderError.request_id``. Nothing sends
reply headers on to a client (a sync route answers with the response object in the body).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from eventgateway.errors import ProviderError, ValidationError
from eventgateway.model.entities import Function
from eventgateway.providers.base import MAX_REPLY_BYTES, Call, Provider, Reply
from eventgateway.runtime.base import Language, RuntimeSpec
from eventgateway.runtime.bundles import BundleStore
from eventgateway.runtime.pool import FunctionRuntime

__all__ = ["REQUEST_ID_HEADER", "RuntimeProvider", "runs_as"]

REQUEST_ID_HEADER: Final = "x-eg-request-id"
_EXCERPT_CHARS = 2000


class _Error(msgspec.Struct):
    errorType: str = "Error"
    errorMessage: str = ""


_error_decoder = msgspec.json.Decoder(_Error)


class RuntimeProvider(Provider):
    """Runs functions of one language (``python`` or ``nodejs``) locally."""

    def __init__(self, language: Language, runtime: FunctionRuntime, bundles: BundleStore) -> None:
        self._language: Language = language
        self._runtime = runtime
        self._bundles = bundles

    def validate(self, function: Function) -> None:
        """Refuse a function whose bundle is missing, or a Node.js one without ``node``."""
        if self._language == "nodejs" and not self._runtime.node_available:
            raise ValidationError(
                "Function doesn't validate. Validation error: Node.js is required to run "
                f"function {function.function_id!r} (runtime "
                f"{function.provider.get('runtime')}), but `node` is not on this gateway's "
                "PATH; install Node.js 18 or newer"
            )
        bundle_id = function.provider.get("bundle", "")
        if not self._bundles.exists(bundle_id):
            raise ValidationError(
                f"Function doesn't validate. Validation error: bundle {bundle_id!r} has not "
                "been uploaded (POST /v1/spaces/{space}/bundles)"
            )

    def _spec(self, function: Function) -> RuntimeSpec:
        bundle = self._bundles.get(function.provider.get("bundle", ""))
        if bundle is None:
            raise ProviderError(
                f"function {function.function_id!r}: its code bundle is missing from this "
                "gateway's data directory",
                retryable=False,
            )
        return RuntimeSpec(
            language=self._language,
            bundle_id=bundle.bundle_id,
            bundle_dir=bundle.path,
            **_settings(function),
        )

    async def call(self, function: Function, call: Call) -> Reply:
        # The function's own timeout applies (Lambda semantics), not the caller's.
        # A bundle uploaded through another instance is fetched before its first run here.
        await self._bundles.ensure(str(function.provider.get("bundle", "")))
        # A waiting caller (sync route) waits for a free worker no longer than its call may
        # take; an async delivery waits its turn (the dispatcher bounds how many wait).
        slot_wait_s = call.timeout_s if call.sync else None
        result = await self._runtime.invoke(
            self._spec(function), call.body, slot_wait_s=slot_wait_s
        )
        if result.ok:
            if call.sync and len(result.payload) > MAX_REPLY_BYTES:
                raise ProviderError(
                    f"function {function.function_id!r} replied with more than "
                    f"{MAX_REPLY_BYTES} bytes",
                    retryable=False,
                    request_id=result.request_id,
                )
            headers = ((REQUEST_ID_HEADER, result.request_id),)
            return Reply(status=200, body=result.payload, headers=headers)
        try:
            error = _error_decoder.decode(result.payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            error = _Error(errorMessage=result.payload.decode("utf-8", "replace"))
        raise ProviderError(
            f"function {function.function_id!r} failed: {error.errorType}: {error.errorMessage}",
            retryable=True,
            body_excerpt=result.payload.decode("utf-8", "replace")[:_EXCERPT_CHARS],
            request_id=result.request_id,
        )


def _settings(function: Function) -> dict[str, Any]:
    """What a :class:`RuntimeSpec` takes from the function's definition, bundle aside."""
    provider = function.provider
    return {
        "space": function.space,
        "function_id": function.function_id,
        "runtime": str(provider.get("runtime", "")),
        "handler": str(provider["handler"]),
        "memory_mb": int(provider.get("memorySize", 1024)),
        "timeout_s": float(provider.get("timeout", 6)),
        "concurrency": int(provider.get("concurrency", 4)),
        "environment": dict(provider.get("environment") or {}),
    }


def runs_as(function: Function | None, spec: RuntimeSpec) -> bool:
    """Whether ``spec`` still runs ``function`` as defined now: ``False`` once it was
    removed, or redeployed (another bundle, handler, memory size, environment…)."""
    if function is None or function.type != spec.language:
        return False
    if function.provider.get("bundle") != spec.bundle_id:
        return False
    return all(getattr(spec, name) == value for name, value in _settings(function).items())
