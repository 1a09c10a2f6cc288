"""What the CLI test modules that run `eg` against a real gateway share."""

from __future__ import annotations

import pathlib

import pytest

__all__ = ["VARIABLES", "clean_workdir"]

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")
"""The `EG_*` variables that would point `eg` elsewhere."""


def clean_workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """Run in ``tmp_path`` (no serverless.yml) without the machine's `EG_*` variables."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
