from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver


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
