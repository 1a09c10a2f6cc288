"""A real `eg serve` in auth mode: private-space emits need a key, and floods get 429."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import httpx
import pytest

from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

EVENT = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "user.created"}
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture
def gateway(tmp_path: pathlib.Path) -> Iterator[GatewayProcess]:
    # 5 events of burst and a refill of one per 100 s: the test's timing cannot matter.
    process = GatewayProcess(tmp_path / "data", "--rate-limit-space", "0.01/5", auth=True)
    try:
        yield process.start()
    finally:
        if process.proc is not None:
            process.stop()


def test_private_space_emits_need_an_emit_key_and_are_rate_limited(gateway: GatewayProcess):
    with (
        httpx.Client(base_url=gateway.config_url, timeout=10) as config,
        httpx.Client(base_url=gateway.events_url, timeout=10) as events,
    ):
        claimed = config.post("/v1/spaces", json={"name": "acme", "emitRequiresKey": True})
        assert claimed.status_code == 201, claimed.text
        admin = {"Authorization": f"Bearer {claimed.json()['apiKey']}"}
        issued = config.post("/v1/spaces/acme/keys", json={"scopes": ["emit"]}, headers=admin)
        assert issued.status_code == 201, issued.text
        key = issued.json()["apiKey"]

        def emit(**headers: str) -> httpx.Response:
            return events.post("/acme/users", json=EVENT, headers={**STRUCTURED, **headers})

        anonymous = emit()
        wrong = emit(**{"X-Api-Key": "not-a-key"})
        accepted = [emit(**{"X-Api-Key": key}).status_code for _ in range(3)]
        accepted += [emit(Authorization=f"Bearer {key}").status_code for _ in range(2)]
        flooded = emit(**{"X-Api-Key": key})
        public = events.post("/elsewhere", json=EVENT, headers=STRUCTURED)

    assert anonymous.status_code == 401
    assert "X-Api-Key" in anonymous.json()["errors"][0]["message"]
    assert wrong.status_code == 401
    assert accepted == [202] * 5  # the two 401s spent none of the 5
    assert flooded.status_code == 429
    assert int(flooded.headers["Retry-After"]) >= 1
    assert flooded.json()["errors"][0]["message"].startswith('Rate limit exceeded for space "acme"')
    assert public.status_code == 202
