"""`eg serve --aws-default-credentials`: passed on as Settings, from the flag or the env."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli
from eventgateway.settings import Settings

VARIABLES = ("EG_AWS_DEFAULT_CREDENTIALS", "EG_AUTH", "EG_OPERATOR_KEY")


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


@pytest.mark.parametrize(
    ("args", "env", "allowed"),
    [
        ((), {}, False),
        (("--no-auth",), {}, True),
        (("--aws-default-credentials",), {}, True),
        (("--no-auth", "--no-aws-default-credentials"), {}, False),
        ((), {"EG_AWS_DEFAULT_CREDENTIALS": "1"}, True),
        (("--no-auth",), {"EG_AWS_DEFAULT_CREDENTIALS": "false"}, False),
    ],
)
def test_the_flag_and_its_variable_reach_the_settings(
    served: list[Settings], args: tuple[str, ...], env: dict[str, str], allowed: bool
):
    result = serve(*args, env=env)

    assert result.exit_code == 0, result.output
    assert served[0].aws_default_credentials_allowed is allowed


def test_the_help_names_the_flag_and_its_default():
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)

    assert "--aws-default-credentials / --no-aws-default-credentials" in result.output
    assert "[default: refuse with auth, allow with --no-auth]" in " ".join(result.output.split())
