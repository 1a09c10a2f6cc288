from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver


@pytest.fixture(autouse=True)
def _private_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """`eg` commands (in-process or subprocesses) never read or write the user's credentials
    file: XDG_CONFIG_HOME, which subprocesses inherit, points into the test's directory."""
    monkeypatch.delenv("EG_CREDENTIALS_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server on 127.0.0.1 playing functions."""
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def gateway_process(tmp_path: pathlib.Path) -> Iterator[GatewayProcess]:
    """`eg serve` in a subprocess on free ports with a temporary data dir."""
    gateway = GatewayProcess(tmp_path / "data").start()
    yield gateway
    gateway.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`slow` tests (soak, load, deep fuzzing) run only when asked for: `pytest -m slow`."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with `pytest -m slow`")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
