"""`eg dev` options (the running loop is tested end to end in tests/e2e/test_dev.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli


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
