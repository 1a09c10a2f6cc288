"""The Configuration API (port 4001): ``/v1/spaces/{space}/…``, status, metrics, OpenAPI.

A thin HTTP shell over :class:`~eventgateway.api.resources.ConfigResources`: it reads the
space, IDs, body and metadata filters from the request, calls one operation, encodes the
result (JSON plus a newline, as Go's encoder wrote) and counts the request in
:class:`~eventgateway.observability.metrics.Metrics`.

Router behaviour follows the original's ``httprouter`` defaults rather than Starlette's:
an unknown route is 404 ``404 page not found`` in plain text, a known route with another
method is 405 ``Method Not Allowed`` (OPTIONS is answered 200 with ``Allow``), and a
trailing slash on a known route redirects to the route without it (301 for GET/HEAD,
308 otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Match, Route

import eventgateway.api.convertors  # noqa: F401 - registers the 'rest' convertor
from eventgateway.api.item_paths import (
    canonical_cors_id,
    item_id,
    raw_item_rest,
    raw_last_segment,
)
from eventgateway.api.openapi import openapi_document
from eventgateway.api.problems import EXCEPTION_HANDLERS, response_for
from eventgateway.api.readiness import Check, readiness_endpoint
from eventgateway.api.resources import ConfigResources, FunctionCheck, PathCheck
from eventgateway.model.entities import Kind
from eventgateway.model.validate import Body
from eventgateway.observability.metrics import CONTENT_TYPE, Metrics
from eventgateway.store.base import ConfigStore

__all__ = ["create_config_app", "metadata_filters", "raw_last_segment"]

logger = logging.getLogger(__name__)

_encoder: Final = msgspec.json.Encoder()
_FILTER_PREFIX: Final = "metadata."


def _json(payload: object, status: int = 200) -> Response:
    return Response(
        _encoder.encode(payload) + b"\n", status_code=status, media_type="application/json"
    )


def metadata_filters(request: Request) -> dict[str, str]:
    """``metadata.<key>=<value>`` query parameters (first value per key); others ignored."""
    filters: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith(_FILTER_PREFIX):
            filters.setdefault(key[len(_FILTER_PREFIX) :], value)
    return filters


@dataclass(frozen=True, slots=True)
class _Resource:
    """One resource's operations, bound to a :class:`ConfigResources`."""

    metric_name: str
    list_key: str
    list: Callable[[str, Mapping[str, str]], Awaitable[list[Any]]]
    create: Callable[[str, Body], Awaitable[Any]]
    get: Callable[[str, str], Awaitable[Any]]
    update: Callable[[str, str, Body], Awaitable[Any]]
    delete: Callable[[str, str], Awaitable[None]]
    id_from_raw_path: bool = False


class _Endpoints:
    """Request handlers; every resource request is counted and timed."""

    def __init__(self, resources: ConfigResources, metrics: Metrics) -> None:
        self.metrics = metrics
        r = resources
        self.resources = {
            "eventtypes": _Resource(
                "eventtype",
                "eventTypes",
                r.list_event_types,
                r.create_event_type,
                r.get_event_type,
                r.update_event_type,
                r.delete_event_type,
            ),
            "functions": _Resource(
                "function",
                "functions",
                r.list_functions,
                r.create_function,
                r.get_function,
                r.update_function,
                r.delete_function,
            ),
            "subscriptions": _Resource(
                "subscription",
                "subscriptions",
                r.list_subscriptions,
                r.create_subscription,
                r.get_subscription,
                r.update_subscription,
                r.delete_subscription,
            ),
            "cors": _Resource(
                "cors",
                "cors",
                r.list_cors,
                r.create_cors,
                r.get_cors,
                r.update_cors,
                r.delete_cors,
                id_from_raw_path=True,
            ),
        }

    async def _measured(
        self,
        space: str,
        resource: _Resource,
        operation: str,
        call: Callable[[], Awaitable[Response]],
    ) -> Response:
        start = time.perf_counter()
        try:
            return await call()
        except Exception as exc:
            # Answer here: Starlette's outermost handler would re-raise after answering.
            return response_for(exc)
        finally:
            self.metrics.config_requests.labels(space, resource.metric_name, operation).inc()
            self.metrics.config_request_duration_seconds.observe(time.perf_counter() - start)

    def collection(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``/v1/spaces/{space}/<name>``: GET lists, POST creates."""
        resource = self.resources[name]

        async def endpoint(request: Request) -> Response:
            space = request.path_params["space"]
            if request.method == "POST":

                async def create() -> Response:
                    return _json(await resource.create(space, await request.body()), 201)

                return await self._measured(space, resource, "create", create)

            async def list_() -> Response:
                found = await resource.list(space, metadata_filters(request))
                return _json({resource.list_key: found})

            return await self._measured(space, resource, "list", list_)

        return endpoint

    def item(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``/v1/spaces/{space}/<name>/{id}``: GET, PUT, DELETE."""
        resource = self.resources[name]

        async def endpoint(request: Request) -> Response:
            space = request.path_params["space"]
            if resource.id_from_raw_path:
                key = canonical_cors_id(raw_last_segment(request))
            else:
                rest = raw_item_rest(request)
                found = item_id(rest)
                if found is None:
                    return await _unrouted_item(request, rest)
                key = found

            if request.method == "PUT":

                async def update() -> Response:
                    return _json(await resource.update(space, key, await request.body()))

                return await self._measured(space, resource, "update", update)
            if request.method == "DELETE":

                async def delete() -> Response:
                    await resource.delete(space, key)
                    return Response(status_code=204)

                return await self._measured(space, resource, "delete", delete)

            async def get() -> Response:
                return _json(await resource.get(space, key))

            return await self._measured(space, resource, "get", get)

        return endpoint


def _trailing_slash_redirect(request: Request) -> Response | None:
    """httprouter's redirect from ``/known/route/`` to ``/known/route``, if one applies."""
    path: str = request.scope["path"]
    if path == "/" or not path.endswith("/"):
        return None
    candidate = dict(request.scope, path=path[:-1])
    for route in request.app.router.routes:
        match, _ = route.matches(candidate)
        if match is Match.FULL:
            raw = request.scope.get("raw_path")
            location = raw.decode("utf-8", "replace")[:-1] if raw else path[:-1]
            if request.url.query:
                location += "?" + request.url.query
            status = 301 if request.method in ("GET", "HEAD") else 308
            return RedirectResponse(location, status_code=status)
    return None


async def _unrouted_item(request: Request, rest: str | None) -> Response:
    """httprouter's answer for an item path that is not one ID: ``x/``, ``a/b`` or empty.

    Only ``…/<kind>/`` and ``…/<kind>/x/`` may redirect: ``a/b/`` would lead to ``a/b``,
    itself unknown.
    """
    if rest == "" or (rest is not None and len(rest) > 1 and "/" not in rest[:-1]):
        redirect = _trailing_slash_redirect(request)
        if redirect is not None:
            return redirect
    return PlainTextResponse("404 page not found\n", status_code=404)


async def _not_found(request: Request, exc: Exception) -> Response:
    del exc
    redirect = _trailing_slash_redirect(request)
    if redirect is not None:
        return redirect
    return PlainTextResponse("404 page not found\n", status_code=404)


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    redirect = _trailing_slash_redirect(request)
    if redirect is not None:
        return redirect
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if request.method == "OPTIONS":
        return Response(status_code=200, headers=headers)
    return PlainTextResponse("Method Not Allowed\n", status_code=405, headers=headers)


# httprouter's answers for unknown routes and methods, shared by every Configuration API app.
ROUTER_HANDLERS: Final[dict[Any, Any]] = {404: _not_found, 405: _method_not_allowed}


def create_config_app(
    store: ConfigStore,
    metrics: Metrics,
    *,
    check_function: FunctionCheck | None = None,
    quotas: Mapping[Kind, int] | None = None,
    check_path: PathCheck | None = None,
    readiness: Sequence[Check] = (),
) -> Starlette:
    """Build the Configuration API app over ``store``.

    The app has no lifespan of its own: the caller opens ``store`` before serving and
    closes it afterwards. ``app.state.resources`` holds the
    :class:`~eventgateway.api.resources.ConfigResources` it uses.

    Args:
        store: the configuration store, already open when requests arrive.
        metrics: where requests are counted (``eventgateway_config_requests_total``) and
            what ``GET /v1/metrics`` renders.
        check_function: refuses functions that cannot run here.
        quotas: the most entities of each kind one space may hold (see
            :func:`~eventgateway.api.quotas.per_space_quotas`).
        check_path: refuses new subscription and CORS paths outside their space's
            prefix (auth mode; :func:`~eventgateway.api.auth.check_space_path`).
        readiness: what ``GET /v1/ready`` checks (``api/readiness.py``); none: ready.

    .. versionadded:: 0.1.0
    """
    resources = ConfigResources(
        store, check_function=check_function, quotas=quotas, check_path=check_path
    )
    endpoints = _Endpoints(resources, metrics)
    document = openapi_document()

    async def status(request: Request) -> Response:
        del request
        return Response(status_code=200)

    async def render_metrics(request: Request) -> Response:
        del request
        if metrics.before_render is not None:
            await metrics.before_render()
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        del request
        return JSONResponse(document)

    routes = [
        Route("/v1/status", status, methods=["GET"]),
        Route("/v1/ready", readiness_endpoint(readiness), methods=["GET"]),
        Route("/v1/metrics", render_metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    for name in ("eventtypes", "functions", "subscriptions", "cors"):
        routes.append(
            Route(
                f"/v1/spaces/{{space}}/{name}", endpoints.collection(name), methods=["GET", "POST"]
            )
        )
        # A path convertor: the decoded ID may contain "/" (``GET%2Ftest`` → ``GET/test``,
        # an event type ``a%2Fb`` → ``a/b``); the endpoint reads the ID from the raw path.
        routes.append(
            Route(
                f"/v1/spaces/{{space}}/{name}/{{rest:rest}}",
                endpoints.item(name),
                methods=["GET", "PUT", "DELETE"],
            )
        )

    handlers: dict[Any, Any] = {**EXCEPTION_HANDLERS, **ROUTER_HANDLERS}
    app = Starlette(routes=routes, exception_handlers=handlers)
    # Starlette would answer a trailing slash with its own 307; httprouter's rules apply
    # instead (see _trailing_slash_redirect).
    app.router.redirect_slashes = False
    app.state.resources = resources
    return app
