"""A whole gateway in the test's event loop, driven through httpx's ASGI transport."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from eventgateway.app import Gateway
from eventgateway.settings import Settings
from eventgateway.store.memory import MemoryStore

EVENTS = "http://127.0.0.1:4000"
CONFIG = "http://127.0.0.1:4001"


@dataclass
class InProcess:
    gateway: Gateway
    events: httpx.AsyncClient
    config: httpx.AsyncClient
    space: str = "acme"

    async def create(self, resource: str, body: dict[str, Any], space: str | None = None) -> Any:
        response = await self.config.post(f"/v1/spaces/{space or self.space}/{resource}", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def http_function(self, function_id: str, url: str, space: str | None = None) -> Any:
        return await self.create(
            "functions",
            {"functionId": function_id, "type": "http", "provider": {"url": url}},
            space,
        )

    async def event_type(self, name: str, space: str | None = None, **extra: Any) -> Any:
        return await self.create("eventtypes", {"name": name, **extra}, space)

    async def subscribe(self, space: str | None = None, **body: Any) -> Any:
        return await self.create("subscriptions", body, space)

    async def upload_bundle(self, files: dict[str, str], space: str | None = None) -> str:
        """Zip ``files`` (name → text), upload the bundle, and return its id."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in files.items():
                archive.writestr(name, text)
        response = await self.config.post(
            f"/v1/spaces/{space or self.space}/bundles",
            content=buffer.getvalue(),
            headers={"content-type": "application/zip"},
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["bundleId"])


@contextlib.asynccontextmanager
async def in_process_gateway(**settings: Any) -> AsyncIterator[InProcess]:
    """A gateway on memory backends, or on SQLite files when ``data_dir`` is given."""
    settings.setdefault("dispatch", "inline")
    resolver = settings.pop("resolver", None)  # DNS of outbound calls (tests/support/outbound)
    if "data_dir" in settings:
        gateway = Gateway(Settings(**settings), resolver=resolver)
    else:
        gateway = Gateway(
            Settings(store_url="memory://", **settings), store=MemoryStore(), resolver=resolver
        )
    await gateway.start()
    app = gateway.asgi(4001)
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url=EVENTS) as events,
            httpx.AsyncClient(transport=transport, base_url=CONFIG) as config,
        ):
            yield InProcess(gateway, events, config)
    finally:
        await gateway.stop()
