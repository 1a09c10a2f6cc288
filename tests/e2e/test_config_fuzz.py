"""Schemathesis against the Configuration API's own OpenAPI document, on a real `eg serve`.

Generated requests, valid and invalid, must never get a 5xx, and every JSON error must
have the contract shape ``{"errors":[{"message": "<text>"}]}``. The default run is kept
short; ``-m slow`` runs many more examples per operation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from eventgateway.api.openapi import openapi_document
from tests.support.process import GatewayProcess

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.e2e

# httprouter's plain-text answers, kept from the original for unknown routes and methods.
ROUTER_TEXTS = {404: "404 page not found\n", 405: "Method Not Allowed\n"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("fuzz") / "data", "--dispatch", "inline", "--log-level", "warning"
    )
    try:
        yield process.start()
    finally:
        if process.proc is not None:
            process.stop()


def header(response: Any, name: str) -> str:
    # schemathesis keeps every value of a header, in a list
    values = {key.lower(): value for key, value in response.headers.items()}.get(name, [""])
    return str(values[0])


def check_contract(response: Any, gateway: GatewayProcess) -> None:
    context = f"{response.request.method} {response.request.url} → {response.status_code}"
    assert response.status_code < 500, f"{context}: {response.text}\n{gateway.log()[-3000:]}"
    if response.status_code < 400:
        return
    content_type = header(response, "content-type")
    if response.status_code in ROUTER_TEXTS and content_type.startswith("text/plain"):
        assert response.text == ROUTER_TEXTS[response.status_code], context
        return
    assert content_type == "application/json", context
    body = response.json()
    assert list(body) == ["errors"], context
    assert len(body["errors"]) >= 1, context
    for error in body["errors"]:
        assert list(error) == ["message"], context
        assert isinstance(error["message"], str), context
        assert error["message"], context


# Loaded from the document the app serves, without a server: the operations are known
# at collection time, and each case is sent to the running gateway's base URL.
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


def fuzz(operation: Any, gateway: GatewayProcess, examples: int, *, fixed: bool) -> None:
    """Send ``examples`` valid and as many invalid requests; ``fixed``: the same every run."""
    for mode in MODES:

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=fixed,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            check_contract(case.call(base_url=gateway.config_url, timeout=10), gateway)

        try:
            run()
        except Unsatisfiable:
            # No invalid request exists for an operation without parameters or body.
            assert mode is schemathesis.GenerationMode.NEGATIVE


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_no_5xx_and_errors_have_the_contract_shape(operation: Any, gateway: GatewayProcess):
    fuzz(operation, gateway, int(os.environ.get("EG_FUZZ_EXAMPLES", "8")), fixed=True)


@pytest.mark.slow
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_many_examples_no_5xx_and_contract_shaped_errors(operation: Any, gateway: GatewayProcess):
    fuzz(operation, gateway, 300, fixed=False)
