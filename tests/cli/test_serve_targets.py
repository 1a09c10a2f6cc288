"""The SSRF guard's flags: `eg serve` passes them on as Settings; the worker gets them in full."""

from __future__ import annotations

import ipaddress
import pathlib
from typing import Any

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli
from eventgateway.providers.targets import TargetPolicy
from eventgateway.settings import Settings
from eventgateway.supervisor import _target_args

VARIABLES = ("EG_ALLOW_PRIVATE_TARGETS", "EG_ALLOW_TARGETS", "EG_AUTH", "EG_OPERATOR_KEY")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> list[Settings]:
    seen: list[Settings] = []
    monkeypatch.setattr("eventgateway.serving.serve", seen.append)
    monkeypatch.setattr("eventgateway.cli.main.logging.basicConfig", lambda **_: None)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return seen


def serve(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["serve", *args], env=env)


@pytest.mark.parametrize(("args", "allow"), [((), False), (("--no-auth",), True)])
def test_without_flags_private_targets_follow_the_auth_mode(
    served: list[Settings], args: tuple[str, ...], allow: bool
):
    result = serve(*args)

    assert result.exit_code == 0, result.output
    [settings] = served
    assert (settings.private_targets, settings.allowed_targets) == (None, ())
    assert settings.target_policy.allow_private is allow


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--allow-private-targets"], "allow"), (["--deny-private-targets"], "deny")],
)
def test_the_flags_override_either_default(served: list[Settings], args: list[str], expected: str):
    assert serve(*args).exit_code == 0
    assert served[0].private_targets == expected


def test_allow_target_is_repeatable_and_takes_addresses_and_networks(served: list[Settings]):
    result = serve("--allow-target", "10.1.2.3", "--allow-target", "fd00::/8")

    assert result.exit_code == 0, result.output
    assert served[0].allowed_targets == (
        ipaddress.ip_network("10.1.2.3/32"),
        ipaddress.ip_network("fd00::/8"),
    )


def test_eg_variables_set_the_guard(served: list[Settings]):
    env = {"EG_ALLOW_PRIVATE_TARGETS": "false", "EG_ALLOW_TARGETS": "10.0.0.0/8 192.168.1.1"}

    assert serve(env=env).exit_code == 0
    assert served[0].target_policy == TargetPolicy(
        allow_private=False,
        allow_list=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.1/32")),
    )


def test_an_allow_target_that_is_no_network_is_a_usage_error(served: list[Settings]):
    result = serve("--allow-target", "intranet")

    assert result.exit_code == 2
    assert "'intranet' is not an IP address or network" in result.output
    assert served == []


@pytest.mark.parametrize(
    ("settings", "allow"),
    [
        (Settings(), True),  # no auth: the open default of the original
        (Settings(auth=True), False),
        (Settings(private_targets="deny"), False),
        (Settings(auth=True, private_targets="allow"), True),
    ],
)
def test_settings_give_the_policy(settings: Settings, allow: bool):
    assert settings.target_policy.allow_private is allow


def test_the_worker_is_told_the_whole_policy():
    policy = TargetPolicy(allow_list=(ipaddress.ip_network("10.0.0.0/8"),))

    assert _target_args(policy) == ["--deny-private-targets", "--allow-target", "10.0.0.0/8"]
    assert _target_args(TargetPolicy(allow_private=True)) == ["--allow-private-targets"]
