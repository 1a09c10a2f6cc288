"""Whether a warm pool's spec still runs a function as defined (``runs_as``)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from eventgateway.model.entities import Function
from eventgateway.providers.runtime import runs_as
from eventgateway.runtime.base import RuntimeSpec

PROVIDER: dict[str, Any] = {
    "bundle": "b1",
    "handler": "handler.main",
    "runtime": "python3.11",
    "memorySize": 256,
    "timeout": 6,
    "concurrency": 2,
    "environment": {"A": "1"},
}
SPEC = RuntimeSpec(
    space="s",
    function_id="f",
    language="python",
    runtime="python3.11",
    bundle_id="b1",
    bundle_dir=pathlib.Path("/bundles/b1"),
    handler="handler.main",
    memory_mb=256,
    timeout_s=6.0,
    concurrency=2,
    environment={"A": "1"},
)


def function(type_: str = "python", **changes: Any) -> Function:
    return Function(space="s", function_id="f", type=type_, provider={**PROVIDER, **changes})


def test_the_function_as_deployed_is_still_run_by_its_spec() -> None:
    assert runs_as(function(), SPEC)


@pytest.mark.parametrize(
    "changes",
    [
        {"bundle": "b2"},  # new code
        {"handler": "handler.other"},
        {"memorySize": 512},
        {"timeout": 3},
        {"concurrency": 4},
        {"environment": {"A": "2"}},
        {"runtime": "python3.12"},
    ],
)
def test_a_redeployed_function_is_not(changes: dict[str, Any]) -> None:
    assert not runs_as(function(**changes), SPEC)


def test_a_removed_function_or_another_language_is_not() -> None:
    assert not runs_as(None, SPEC)
    assert not runs_as(function("nodejs"), SPEC)
