"""Which request each SDK method sends and how its reply is read — no I/O.

:class:`Calls` has one method per client method, with the same arguments, returning a
:class:`~eventgateway.sdk._wire.Call`; the clients only send it (with retries) and parse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from eventgateway.sdk import _emit, _wire
from eventgateway.sdk._emit import DEFAULT_SOURCE
from eventgateway.sdk._replay import ReplayCalls
from eventgateway.sdk._space_calls import SpaceCalls
from eventgateway.sdk._wire import Call, EmitResult, Reply, Request

__all__ = ["Calls"]

T = TypeVar("T")

_JSON: Final = "application/json"


def _present(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def _purged_one(reply: Reply) -> int:
    # Purging is idempotent: a dead letter already gone counts as nothing purged.
    return int(_wire.to_exists(reply))


class Calls(SpaceCalls, ReplayCalls):
    """Builds the :class:`Call` of every API method for one gateway and space.

    The spaces and API keys methods come from :class:`SpaceCalls`, replay from
    :class:`ReplayCalls`.

    Args:
        url: the Events API URL.
        config_url: the Configuration API URL, or ``None`` to derive it from ``url``.
        space: the space every configuration call and the default paths use (``None``:
            the one a hosted-style URL names, else ``default``).
        api_key: sent as ``Authorization: Bearer <key>`` on every request when set.
        domain: the gateway's ``--domain``, when ``url`` is ``<space>.<domain>``.

    Raises:
        ValueError: a URL is not http(s) with a host, or the URL names another space.
    """

    def __init__(
        self,
        url: str,
        *,
        config_url: str | None,
        space: str | None,
        api_key: str | None,
        domain: str | None = None,
    ):
        self.endpoints = _wire.Endpoints.derive(url, config_url, space, domain)
        self.space = self.endpoints.space
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    # -- Events API ------------------------------------------------------------------------

    def emit(
        self,
        event: str | None = None,
        data: Any = None,
        *,
        cloudevent: Mapping[str, Any] | None = None,
        source: str = DEFAULT_SOURCE,
        id: str | None = None,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        data_content_type: str = _JSON,
        mode: str = "structured",
        partition_key: str | None = None,
        idempotent: bool = False,
    ) -> Call[EmitResult]:
        encoded = _emit.encode_emit(
            event,
            data,
            cloudevent=cloudevent,
            source=source,
            id=id,
            data_content_type=data_content_type,
            mode=mode,
            partition_key=partition_key,
            idempotent=idempotent,
        )
        return self._emit(path, encoded, headers)

    def emit_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        path: str | None = None,
        idempotent: bool = False,
    ) -> Call[EmitResult]:
        return self._emit(path, _emit.encode_batch(events, idempotent=idempotent), None)

    def _emit(
        self, path: str | None, encoded: _emit.Encoded, headers: Mapping[str, str] | None
    ) -> Call[EmitResult]:
        path = self.endpoints.emit_path if path is None else path
        path = path if path.startswith("/") else "/" + path
        sent = {**self._auth, **encoded.headers}
        merged = _emit.merge_headers(sent, (headers or {}).items())
        request = self.endpoints.events.request(
            "POST", path, merged, encoded.content, encoded.retry
        )
        return Call(request, _wire.to_emit_result)

    # -- Configuration API -----------------------------------------------------------------

    def _config(
        self,
        method: str,
        path: str,
        parse: Callable[[Reply], T],
        *,
        body: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str = _JSON,
        retry: _wire.Retry = "unsent",
    ) -> Call[T]:
        headers = dict(self._auth)
        if body is not None:
            content = _wire.dumps(dict(body))
        if content is not None:
            headers["Content-Type"] = content_type
        full = f"/v1/spaces/{_wire.segment(self.space)}/{path}"
        return Call(self.endpoints.config.request(method, full, headers, content, retry), parse)

    def _list(
        self, resource: str, key: str, metadata: Mapping[str, str]
    ) -> Call[list[dict[str, Any]]]:
        return self._config("GET", resource + _wire.metadata_query(metadata), _wire.member(key))

    def create_function(
        self,
        function_id: str,
        type: str,
        provider: Mapping[str, Any],
        *,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Call[dict[str, Any]]:
        body = {"functionId": function_id, "type": type, "provider": dict(provider)}
        body = _present({**body, "metadata": metadata, **options})
        return self._config("POST", "functions", _wire.to_object, body=body)

    def update_function(
        self,
        function_id: str,
        type: str,
        provider: Mapping[str, Any],
        *,
        metadata: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Call[dict[str, Any]]:
        body = {"functionId": function_id, "type": type, "provider": dict(provider)}
        body = _present({**body, "metadata": metadata, **options})
        path = "functions/" + _wire.segment(function_id)
        return self._config("PUT", path, _wire.to_object, body=body)

    def get_function(self, function_id: str) -> Call[dict[str, Any]]:
        return self._config("GET", "functions/" + _wire.segment(function_id), _wire.to_object)

    def list_functions(self, metadata: Mapping[str, str]) -> Call[list[dict[str, Any]]]:
        return self._list("functions", "functions", metadata)

    def delete_function(self, function_id: str) -> Call[None]:
        return self._config("DELETE", "functions/" + _wire.segment(function_id), _wire.to_none)

    def create_event_type(
        self, name: str, *, authorizer_id: str | None, metadata: Mapping[str, str] | None
    ) -> Call[dict[str, Any]]:
        body = _present({"name": name, "authorizerId": authorizer_id, "metadata": metadata})
        return self._config("POST", "eventtypes", _wire.to_object, body=body)

    def update_event_type(
        self, name: str, *, authorizer_id: str | None, metadata: Mapping[str, str] | None
    ) -> Call[dict[str, Any]]:
        body = _present({"name": name, "authorizerId": authorizer_id, "metadata": metadata})
        path = "eventtypes/" + _wire.segment(name)
        return self._config("PUT", path, _wire.to_object, body=body)

    def get_event_type(self, name: str) -> Call[dict[str, Any]]:
        return self._config("GET", "eventtypes/" + _wire.segment(name), _wire.to_object)

    def list_event_types(self, metadata: Mapping[str, str]) -> Call[list[dict[str, Any]]]:
        return self._list("eventtypes", "eventTypes", metadata)

    def delete_event_type(self, name: str) -> Call[None]:
        return self._config("DELETE", "eventtypes/" + _wire.segment(name), _wire.to_none)

    def subscribe(
        self,
        event_type: str,
        function_id: str,
        *,
        type: str = "async",
        path: str | None = None,
        method: str | None = None,
        metadata: Mapping[str, str] | None = None,
        filter: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Call[dict[str, Any]]:
        body = {
            "type": type,
            "eventType": event_type,
            "functionId": function_id,
            "path": f"/{self.space}/" if path is None else path,
            "method": method,
            "metadata": metadata,
            "filter": filter,
            **options,
        }
        return self._config("POST", "subscriptions", _wire.to_object, body=_present(body))

    def update_subscription(
        self, subscription_id: str, body: Mapping[str, Any]
    ) -> Call[dict[str, Any]]:
        path = "subscriptions/" + _wire.segment(subscription_id)
        return self._config("PUT", path, _wire.to_object, body=body)

    def get_subscription(self, subscription_id: str) -> Call[dict[str, Any]]:
        path = "subscriptions/" + _wire.segment(subscription_id)
        return self._config("GET", path, _wire.to_object)

    def list_subscriptions(self, metadata: Mapping[str, str]) -> Call[list[dict[str, Any]]]:
        return self._list("subscriptions", "subscriptions", metadata)

    def unsubscribe(self, subscription_id: str) -> Call[None]:
        path = "subscriptions/" + _wire.segment(subscription_id)
        return self._config("DELETE", path, _wire.to_none)

    def create_cors(
        self,
        method: str,
        path: str,
        *,
        allowed_origins: Sequence[str] | None = None,
        allowed_methods: Sequence[str] | None = None,
        allowed_headers: Sequence[str] | None = None,
        allow_credentials: bool | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Call[dict[str, Any]]:
        body = {
            "method": method,
            "path": path,
            "allowedOrigins": None if allowed_origins is None else list(allowed_origins),
            "allowedMethods": None if allowed_methods is None else list(allowed_methods),
            "allowedHeaders": None if allowed_headers is None else list(allowed_headers),
            "allowCredentials": allow_credentials,
            "metadata": metadata,
        }
        return self._config("POST", "cors", _wire.to_object, body=_present(body))

    # CORS ids are already escaped (``GET%2Ftest``): the gateway reads them from the raw
    # path, so they go into the URL verbatim.

    def update_cors(self, cors_id: str, body: Mapping[str, Any]) -> Call[dict[str, Any]]:
        return self._config("PUT", "cors/" + cors_id, _wire.to_object, body=body)

    def list_cors(self, metadata: Mapping[str, str]) -> Call[list[dict[str, Any]]]:
        return self._list("cors", "cors", metadata)

    def delete_cors(self, cors_id: str) -> Call[None]:
        return self._config("DELETE", "cors/" + cors_id, _wire.to_none)

    # -- code bundles and function logs ----------------------------------------------------

    def upload_bundle(self, zip_bytes: bytes) -> Call[dict[str, Any]]:
        return self._config(
            "POST", "bundles", _wire.to_object, content=zip_bytes, content_type="application/zip"
        )

    def bundle_exists(self, bundle_id: str) -> Call[bool]:
        return self._config("GET", "bundles/" + _wire.segment(bundle_id), _wire.to_exists)

    def logs(
        self, function_id: str, *, since: str | float | None, limit: int, filter: str | None
    ) -> Call[list[dict[str, Any]]]:
        params = {"since": _wire.time_param(since), "limit": limit, "filter": filter}
        path = f"functions/{_wire.segment(function_id)}/logs" + _wire.query(params)
        return self._config("GET", path, _wire.member("logs"))

    def tail_logs(
        self, function_id: str, *, since: str | float | None, filter: str | None
    ) -> Request:
        """The stream request; its reply is read with :class:`~eventgateway.sdk._sse.SseDecoder`."""
        params = {"since": _wire.time_param(since), "filter": filter}
        path = f"functions/{_wire.segment(function_id)}/logs/stream" + _wire.query(params)
        request = self._config("GET", path, _wire.check).request
        request.headers["Accept"] = "text/event-stream"
        return request

    # -- calling a function ----------------------------------------------------------------

    def invoke(
        self,
        function_id: str,
        data: Any,
        *,
        event: str | None,
        wait_s: float | None,
        connect_s: float,
    ) -> Call[dict[str, Any]]:
        path = f"functions/{_wire.segment(function_id)}/invoke"
        body = _present({"event": event, "data": data})
        call = self._config("POST", path, _wire.to_object, body=body)
        if wait_s is not None:
            # httpx's per-request "timeout" extension: a longer wait for the answer only, so
            # an unreachable gateway still fails after the client's connect timeout.
            limits = {"connect": connect_s, "read": wait_s, "write": connect_s, "pool": connect_s}
            call.request.extensions["timeout"] = limits
        return call

    # -- delivery log and dead letters -----------------------------------------------------

    def get_event(self, event_id: str) -> Call[dict[str, Any]]:
        return self._config("GET", "events/" + _wire.segment(event_id), _wire.to_object)

    def list_events(
        self, *, state: str | None, subscription_id: str | None, limit: int
    ) -> Call[list[dict[str, Any]]]:
        params = {"state": state, "subscriptionId": subscription_id, "limit": limit}
        return self._config("GET", "events" + _wire.query(params), _wire.member("events"))

    def list_dead_letters(
        self,
        *,
        subscription_id: str | None,
        since: str | float | None,
        until: str | float | None,
        limit: int,
    ) -> Call[list[dict[str, Any]]]:
        params = {
            "subscriptionId": subscription_id,
            "since": _wire.time_param(since),
            "until": _wire.time_param(until),
            "limit": limit,
        }
        path = "deadletters" + _wire.query(params)
        return self._config("GET", path, _wire.member("deadLetters"))

    def redrive(
        self,
        *,
        ids: Sequence[str] | None,
        subscription_id: str | None,
        since: str | float | None,
        until: str | float | None,
        all: bool,
    ) -> Call[int]:
        body = {
            "ids": None if ids is None else list(ids),
            "subscriptionId": subscription_id,
            "since": _wire.time_param(since),
            "until": _wire.time_param(until),
            "all": True if all else None,
        }
        parse = _wire.member("redriven")
        return self._config("POST", "deadletters/redrive", parse, body=_present(body))

    def purge_dead_letters(
        self, *, ids: Sequence[str] | None, subscription_id: str | None, all: bool
    ) -> list[Call[int]]:
        """One DELETE per id when ``ids`` are given (each counts 1, or 0 if already gone);
        else one filtered DELETE answering ``{"purged": n}``."""
        if ids is not None:
            if subscription_id is not None or all:
                raise ValueError("purge ids= or a filter (subscription_id=, all=), not both")
            path = "deadletters/"
            return [self._config("DELETE", path + _wire.segment(i), _purged_one) for i in ids]
        params = {"subscriptionId": subscription_id, "all": "true" if all else None}
        path = "deadletters" + _wire.query(params)
        return [self._config("DELETE", path, _wire.member("purged"))]

    def status(self) -> Call[bool]:
        request = self.endpoints.config.request("GET", "/v1/status", self._auth, retry="never")
        return Call(request, _wire.to_alive)
