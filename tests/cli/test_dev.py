"""`eg dev` options (the running loop is tested end to end in tests/e2e/test_dev.py)."""

from __future__ import annotations

import pathlib
import shutil
import socket

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli
from tests.support.ports import free_port

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "crm-service"


@pytest.mark.parametrize(
    ("option", "described"),
    [
        ("--events-port", "Port of the Events API"),
        ("--config-port", "Port of the Configuration API"),
    ],
)
def test_the_port_options_are_described_in_the_help(option, described):
    result = CliRunner().invoke(cli, ["dev", "--help"], terminal_width=200)

    [line] = [line for line in result.stdout.splitlines() if line.strip().startswith(option)]
    assert described in line


def test_a_taken_port_exits_2_in_one_line_as_eg_serve_does(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
):
    service = tmp_path / "crm-service"
    shutil.copytree(EXAMPLE, service, ignore=shutil.ignore_patterns(".eventgateway"))
    monkeypatch.chdir(service)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli,
            ["dev", "--events-port", str(port), "--config-port", str(free_port())],
            env={"EG_DATA_DIR": str(tmp_path / "data")},
        )

    assert result.exit_code == 2
    assert result.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
