"""A whole gateway in auth mode inside the test's event loop, with a clock the test moves."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from eventgateway.app import Gateway
from eventgateway.settings import Settings
from eventgateway.store.memory import MemoryStore
from tests.support.inprocess import CONFIG, EVENTS

OPERATOR_KEY = "ego_operator-key-for-tests-0123456789"
START_S = 1_800_000_000.0  # 2027-01-15; any fixed wall-clock time


class Clock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self, now_s: float = START_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def bearer(key: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {key}"}


@dataclass
class AuthGateway:
    gateway: Gateway
    config: httpx.AsyncClient
    events: httpx.AsyncClient
    clock: Clock

    @property
    def operator(self) -> dict[str, str]:
        return bearer(OPERATOR_KEY)

    async def claim(self, space: str, *, as_operator: bool = False, **body: Any) -> dict[str, Any]:
        """Claim ``space`` (with no key, as claim policy open allows) and return the answer."""
        response = await self.config.post(
            "/v1/spaces",
            json={"name": space, **body},
            headers=self.operator if as_operator else None,
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def key(self, space: str, *scopes: str, expires_at: Any = None) -> str:
        """A new key of ``space`` with ``scopes``, issued with the operator key."""
        body: dict[str, Any] = {"scopes": list(scopes)}
        if expires_at is not None:
            body["expiresAt"] = expires_at
        response = await self.config.post(
            f"/v1/spaces/{space}/keys", json=body, headers=self.operator
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["apiKey"]
        return token

    async def create(self, space: str, resource: str, body: dict[str, Any], key: str) -> Any:
        response = await self.config.post(
            f"/v1/spaces/{space}/{resource}", json=body, headers=bearer(key)
        )
        assert response.status_code == 201, response.text
        return response.json()


@contextlib.asynccontextmanager
async def auth_gateway(
    data_dir: pathlib.Path | None = None, **settings: Any
) -> AsyncIterator[AuthGateway]:
    """A started gateway with ``auth=True`` and the operator key :data:`OPERATOR_KEY`.

    Memory backends unless ``data_dir`` is given (then SQLite files in it). Calls may reach
    127.0.0.1 (test receivers), which auth mode refuses by default.
    """
    settings = {
        "dispatch": "inline",
        "auth": True,
        "operator_key": OPERATOR_KEY,
        "private_targets": "allow",
        "shutdown_timeout_s": 2.0,
        **settings,
    }
    if data_dir is not None:
        gateway = Gateway(Settings(data_dir=data_dir, **settings))
    else:
        gateway = Gateway(Settings(store_url="memory://", **settings), store=MemoryStore())
    clock = Clock()
    gateway.keyring.clock = clock
    await gateway.start()
    transport = httpx.ASGITransport(app=gateway.asgi(4001))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url=CONFIG) as config,
            httpx.AsyncClient(transport=transport, base_url=EVENTS) as events,
        ):
            yield AuthGateway(gateway, config, events, clock)
    finally:
        await gateway.stop()
