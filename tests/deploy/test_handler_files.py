"""The deploy-time check that each runtime function's handler module is in the bundle."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.deploy.handler_files import missing_handlers
from eventgateway.deploy.model import FunctionSpec


def function(type_: str, handler: str, **provider: Any) -> FunctionSpec:
    return FunctionSpec(
        key="f", function_id="f", type=type_, provider={"handler": handler, **provider}
    )


@pytest.mark.parametrize(
    ("type_", "handler", "files"),
    [
        ("python", "handler.main", ["handler.py"]),
        ("python", "pkg.mod.main", ["pkg/mod.py"]),
        ("python", "pkg/mod.main", ["pkg/mod.py"]),
        ("python", "pkg.main", ["pkg/__init__.py"]),
        ("python", "fast.main", ["fast.cpython-311-x86_64-linux-gnu.so"]),
        ("nodejs", "index.handler", ["index.js"]),
        ("nodejs", "src/app.handler", ["src/app.mjs"]),
        ("nodejs", "lib.cjs.handler", ["lib.cjs.cjs"]),
    ],
)
def test_a_handler_whose_module_is_there_passes(type_: str, handler: str, files: list[str]):
    assert missing_handlers([function(type_, handler)], [*files, "other.txt"]) == []


@pytest.mark.parametrize(
    ("type_", "handler", "files", "needs"),
    [
        ("python", "handlr.main", ["handler.py"], "handlr.py"),
        ("python", "pkg.mod.main", ["pkg/other.py", "mod.py"], "pkg/mod.py"),
        ("nodejs", "index.handler", ["index.ts", "index.py"], "index.js"),
    ],
)
def test_a_handler_whose_module_is_missing_is_named(
    type_: str, handler: str, files: list[str], needs: str
):
    (warning,) = missing_handlers([function(type_, handler)], files)

    assert warning.startswith(f"function f: its handler {handler!r} needs {needs}, which is not")


def test_functions_without_code_and_malformed_handlers_are_left_alone():
    http = FunctionSpec(key="h", function_id="h", type="http", provider={"url": "http://x"})

    assert missing_handlers([http, function("python", "nodot")], []) == []
