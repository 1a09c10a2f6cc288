"""`eg serve` runs in auth mode by default: its flags, and a real process's operator key."""

from __future__ import annotations

import pathlib
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli
from eventgateway.settings import Settings
from tests.support.process import GatewayProcess

AUTH_VARIABLES = ("EG_AUTH", "EG_CLAIM_POLICY", "EG_OPERATOR_KEY")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> list[Settings]:
    calls: list[Settings] = []
    monkeypatch.setattr("eventgateway.serving.serve", calls.append)
    monkeypatch.setattr("eventgateway.cli.main.logging.basicConfig", lambda **_: None)
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


def serve(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["serve", *args], env=env)


def test_serve_is_in_auth_mode_with_the_open_claim_policy_by_default(served: list[Settings]):
    assert serve().exit_code == 0

    [settings] = served
    assert (settings.auth, settings.claim_policy, settings.operator_key) == (True, "open", None)


def test_no_auth_and_the_claim_policy_are_flags_and_variables(served: list[Settings]):
    assert serve("--no-auth", "--claim-policy", "operator").exit_code == 0
    assert serve(env={"EG_AUTH": "false", "EG_CLAIM_POLICY": "operator"}).exit_code == 0

    assert [(s.auth, s.claim_policy) for s in served] == [(False, "operator")] * 2


def test_the_operator_key_comes_from_the_environment_only(served: list[Settings]):
    assert serve(env={"EG_OPERATOR_KEY": "k" * 32}).exit_code == 0
    assert serve("--operator-key", "k" * 32).exit_code == 2

    assert [s.operator_key for s in served] == ["k" * 32]


def test_an_unknown_claim_policy_is_refused(served: list[Settings]):
    result = serve("--claim-policy", "anyone")

    assert result.exit_code == 2
    assert "--claim-policy" in result.output
    assert served == []


# -- a real `eg serve` ---------------------------------------------------------------------


@pytest.fixture
def secured(tmp_path: pathlib.Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path / "data", auth=True)
    try:
        yield process.start()
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.stop()


@pytest.mark.e2e
def test_a_real_gateway_makes_its_operator_key_once_and_needs_keys(secured: GatewayProcess):
    key = secured.operator_key
    path = secured.data_dir / "operator.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secured.log().count(key) == 1

    with httpx.Client(base_url=secured.config_url, timeout=10) as config:
        anonymous = config.get("/v1/spaces/acme/functions")
        claimed = config.post("/v1/spaces", json={"name": "acme"})
        listed = config.get("/v1/spaces", headers={"Authorization": f"Bearer {key}"})
    assert anonymous.status_code == 401
    assert claimed.status_code == 201
    assert [s["name"] for s in listed.json()["spaces"]] == ["acme"]

    secured.stop()
    secured.start()
    assert secured.operator_key == key
    assert secured.log().count(key) == 1  # the restart read the file and showed nothing
    with httpx.Client(base_url=secured.config_url, timeout=10) as config:
        again = config.get(
            "/v1/spaces/acme", headers={"Authorization": f"bearer {claimed.json()['apiKey']}"}
        )
    assert again.status_code == 200


@pytest.mark.e2e
def test_no_auth_is_the_original_open_gateway(tmp_path: pathlib.Path):
    process = GatewayProcess(tmp_path / "data").start()
    try:
        with httpx.Client(base_url=process.config_url, timeout=10) as config:
            assert config.get("/v1/spaces/acme/functions").status_code == 200
            assert config.get("/v1/metrics").status_code == 200
    finally:
        process.stop()
    assert not (tmp_path / "data" / "operator.key").exists()
