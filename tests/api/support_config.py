"""Drive the Configuration API in-process: an httpx client over the ASGI app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from eventgateway.api.config import create_config_app
from eventgateway.observability.metrics import Metrics
from eventgateway.store.base import ConfigStore
from eventgateway.store.memory import MemoryStore

BASE = "http://test"


@dataclass
class ConfigAPI:
    """A client for one app, with shortcuts for the common setup calls."""

    http: httpx.AsyncClient
    store: ConfigStore
    metrics: Metrics
    space: str = "default"

    def url(self, resource: str, item: str | None = None, space: str | None = None) -> str:
        path = f"/v1/spaces/{space or self.space}/{resource}"
        return path if item is None else f"{path}/{item}"

    async def post(self, resource: str, body: Any, space: str | None = None) -> httpx.Response:
        return await self.http.post(self.url(resource, space=space), json=body)

    async def created(self, resource: str, body: Any, space: str | None = None) -> Any:
        response = await self.post(resource, body, space)
        assert response.status_code == 201, response.text
        return response.json()

    async def event_type(self, name: str, space: str | None = None, **extra: Any) -> Any:
        return await self.created("eventtypes", {"name": name, **extra}, space)

    async def function(self, function_id: str, space: str | None = None, **extra: Any) -> Any:
        body = {"functionId": function_id, "type": "http", "provider": {"url": "http://fn/"}}
        return await self.created("functions", {**body, **extra}, space)

    async def subscription(self, space: str | None = None, **body: Any) -> Any:
        return await self.created("subscriptions", body, space)


def errors(response: httpx.Response) -> str:
    """The one message of an error response, after checking the whole shape."""
    assert response.headers["content-type"] == "application/json"
    assert response.text.endswith("}\n")
    body = response.json()
    assert list(body) == ["errors"]
    assert len(body["errors"]) == 1
    assert list(body["errors"][0]) == ["message"]
    message: str = body["errors"][0]["message"]
    return message


@contextlib.asynccontextmanager
async def config_api(store: ConfigStore | None = None) -> AsyncIterator[ConfigAPI]:
    """An opened store (memory unless given), the app over it and a client; all closed after."""
    backend = store if store is not None else MemoryStore()
    await backend.open()
    metrics = Metrics()
    app = create_config_app(backend, metrics)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            yield ConfigAPI(http, backend, metrics)
    finally:
        await backend.close()
