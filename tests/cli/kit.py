"""What the CLI test modules that run `eg` against a real gateway share."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.process import GatewayProcess

__all__ = ["VARIABLES", "clean_workdir", "module_gateway"]

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")
"""The `EG_*` variables that would point `eg` elsewhere."""


def clean_workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """Run in ``tmp_path`` (no serverless.yml) without the machine's `EG_*` variables."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def module_gateway(name: str, *, auth: bool = False) -> Callable[..., Any]:
    """A module-scoped fixture: one `eg serve` (``auth``: keys required) for the module."""

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
        process = GatewayProcess(tmp_path_factory.mktemp(name) / "data", auth=auth).start()
        yield process
        process.stop()

    return fixture
