"""The ``eg`` group loads client commands on first use, so ``eg serve`` stays small."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from eventgateway.cli.main import LAZY_COMMANDS, cli
from eventgateway.cli.main import main as main_entry


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_lazy_command_loads_under_its_own_name(name: str):
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_every_command_is_listed_once():
    names = cli.list_commands(click.Context(cli))
    assert len(names) == len(set(names))
    assert {"serve", "_callworker", *LAZY_COMMANDS} == set(names)


def test_importing_the_cli_loads_no_client_command_module():
    code = "import sys, json\nimport eventgateway.cli.main\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert {"rich", "yaml", "eventgateway.cli.deploy", "eventgateway.cli.spaces"}.isdisjoint(loaded)


@pytest.mark.parametrize("status", [1, 3])
def test_main_exits_with_the_status_a_command_asks_for(
    monkeypatch: pytest.MonkeyPatch, status: int
):
    # `eg invoke` of a failed invocation raises Exit(1); without standalone mode click
    # hands that back instead of exiting, and main() must not drop it.
    @click.command()
    def failing() -> None:
        raise click.exceptions.Exit(status)

    monkeypatch.setattr("eventgateway.cli.main.cli", failing)
    monkeypatch.setattr(sys, "argv", ["eg"])

    with pytest.raises(SystemExit) as exited:
        main_entry()

    assert exited.value.code == status


def test_main_returns_normally_on_success(monkeypatch: pytest.MonkeyPatch):
    @click.command()
    def fine() -> None:
        click.echo("ok")

    monkeypatch.setattr("eventgateway.cli.main.cli", fine)
    monkeypatch.setattr(sys, "argv", ["eg"])

    main_entry()
