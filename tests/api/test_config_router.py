"""Configuration API: status, metrics, OpenAPI, and httprouter's 404/405/redirect rules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from starlette.routing import Route

from eventgateway.api.config import create_config_app, metadata_filters, raw_last_segment
from eventgateway.api.item_paths import canonical_cors_id, item_id, raw_item_rest
from eventgateway.api.runtime import create_runtime_app
from eventgateway.observability.metrics import Metrics
from eventgateway.store.memory import MemoryStore
from tests.api.support_config import ConfigAPI, config_api


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        yield client


async def test_status_is_an_empty_200(api: ConfigAPI) -> None:
    response = await api.http.get("/v1/status")

    assert response.status_code == 200
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_metrics_render_prometheus_text(api: ConfigAPI) -> None:
    response = await api.http.get("/v1/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE eventgateway_config_requests_total counter" in response.text


async def test_metrics_bring_cached_figures_up_to_date_before_rendering(api: ConfigAPI) -> None:
    # A JetStream instance's backlog is a copy of the stream's: refreshed per scrape.
    gauge = api.metrics.events_backlog
    figures = iter([7, 3])

    async def refresh() -> None:
        gauge.set(next(figures))

    api.metrics.before_render = refresh
    first = (await api.http.get("/v1/metrics")).text
    second = (await api.http.get("/v1/metrics")).text

    assert "eventgateway_events_backlog 7.0" in first
    assert "eventgateway_events_backlog 3.0" in second


async def test_every_resource_request_is_counted(api: ConfigAPI) -> None:
    await api.event_type("e")
    await api.post("eventtypes", {"name": "e"})  # 409 counts too
    await api.http.get(api.url("eventtypes"))
    await api.http.get(api.url("cors", "GET%2Fx", space="other"))

    def count(space: str, resource: str, operation: str) -> float | None:
        labels = {"space": space, "resource": resource, "operation": operation}
        return api.metrics.registry.get_sample_value("eventgateway_config_requests_total", labels)

    assert count("default", "eventtype", "create") == 2
    assert count("default", "eventtype", "list") == 1
    assert count("other", "cors", "get") == 1
    rendered = (await api.http.get("/v1/metrics")).text
    assert "eventgateway_config_request_duration_seconds_count 4.0" in rendered


async def test_unknown_route_is_plain_text_404(api: ConfigAPI) -> None:
    response = await api.http.get("/v1/nothing")

    assert response.status_code == 404
    assert response.text == "404 page not found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_wrong_method_is_plain_text_405(api: ConfigAPI) -> None:
    response = await api.http.patch(api.url("functions", "f1"))

    assert response.status_code == 405
    assert response.text == "Method Not Allowed\n"
    assert set(response.headers["allow"].split(", ")) >= {"GET", "PUT", "DELETE"}


async def test_options_on_a_known_route_lists_the_methods(api: ConfigAPI) -> None:
    response = await api.http.options(api.url("eventtypes"))

    assert response.status_code == 200
    assert response.content == b""
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize(("method", "status"), [("GET", 301), ("POST", 308), ("PUT", 308)])
async def test_trailing_slash_redirects_to_the_route(
    api: ConfigAPI, method: str, status: int
) -> None:
    path = api.url("functions") + ("/" if method != "PUT" else "/f1/")

    response = await api.http.request(method, path + "?x=1")

    assert response.status_code == status
    assert response.headers["location"] == path[:-1] + "?x=1"


async def test_trailing_slash_on_an_unknown_route_is_404(api: ConfigAPI) -> None:
    assert (await api.http.get("/v1/unknown/")).status_code == 404
    assert (await api.http.delete(api.url("eventtypes") + "/")).status_code == 404


async def test_openapi_document_describes_every_route() -> None:
    app = create_config_app(MemoryStore(), Metrics())
    async with config_api() as api:
        response = await api.http.get("/openapi.json")

    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.1")
    documented = {
        path.replace("{name}", "{id}"): {m.upper() for m in spec if m != "parameters"}
        for path, spec in document["paths"].items()
    }
    # The bundles and logs routes are served beside the configuration app (api/runtime.py);
    # building the app only lays out its routes, so the stores may be stand-ins.
    runtime = create_runtime_app(None, None)  # type: ignore[arg-type]
    for route in [*app.routes, *runtime.routes]:
        assert isinstance(route, Route)
        if route.path == "/openapi.json":
            continue
        path = route.path.replace("{rest:rest}", "{id}")
        assert path in documented, path
        assert documented[path] == (route.methods or set()) - {"HEAD"}, path
    assert set(document["components"]["schemas"]["Error"]["required"]) == {"errors"}


def make_request(path: str, raw_path: bytes | None, query: bytes = b"") -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    if raw_path is not None:
        scope["raw_path"] = raw_path
    return Request(scope)


def test_cors_id_comes_from_the_raw_path() -> None:
    request = make_request("/v1/spaces/s/cors/GET/a b", b"/v1/spaces/s/cors/GET%2Fa%20b")

    assert raw_last_segment(request) == "GET%2Fa%20b"


def test_cors_id_falls_back_to_the_decoded_path_without_raw_path() -> None:
    assert raw_last_segment(make_request("/v1/spaces/s/cors/GETx", None)) == "GETx"


def test_metadata_filters_take_the_first_value_per_key() -> None:
    request = make_request(
        "/", None, b"metadata.a=1&metadata.a=2&metadata.b=x%20y&other=z&metadata.=e"
    )

    assert metadata_filters(request) == {"a": "1", "b": "x y", "": "e"}


def test_an_item_id_is_one_raw_segment_percent_decoded() -> None:
    request = make_request("/v1/spaces/s/eventtypes/a/b", b"/v1/spaces/s/eventtypes/a%2Fb?x=1")
    request.scope["path_params"] = {"space": "s", "rest": "a/b"}

    assert item_id(raw_item_rest(request)) == "a/b"


def test_without_raw_path_a_decoded_slash_separates_segments() -> None:
    request = make_request("/v1/spaces/s/eventtypes/a/b", None)
    request.scope["path_params"] = {"space": "s", "rest": "a/b"}

    assert raw_item_rest(request) == "a/b"
    assert item_id(raw_item_rest(request)) is None


def test_a_space_holding_an_encoded_slash_names_no_item() -> None:
    request = make_request(
        "/v1/spaces/s/eventtypes/eventtypes/x", b"/v1/spaces/s%2Feventtypes/eventtypes/x"
    )
    request.scope["path_params"] = {"space": "s", "rest": "eventtypes/x"}

    assert raw_item_rest(request) is None


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("GET%2Fusers%2F:id", "GET%2Fusers%2F:id"),
        ("GET%2fusers%2f%3Aid", "GET%2Fusers%2F:id"),
        ("GET%2Ffiles%2F*p", "GET%2Ffiles%2F%2Ap"),
        ("GETx", "GETx"),
        ("", ""),
    ],
)
def test_cors_ids_are_compared_encoded_the_one_way_ids_are_made(
    written: str, canonical: str
) -> None:
    assert canonical_cors_id(written) == canonical
