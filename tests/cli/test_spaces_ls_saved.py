"""`eg spaces ls` outside a service directory, with keys for several spaces saved.

QA: with the credentials file holding keys for several spaces of the gateway, `eg spaces
ls` answered "Missing API key … claim a space" (it sent no key: none is saved for the
space "default"); a space key sees only its own space, so it now asks with each saved key
and lists the union.
"""

from __future__ import annotations

import json
import pathlib

import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.credentials import Credentials
from eventgateway.cli.main import cli
from tests.cli.kit import clean_workdir, module_gateway
from tests.support.process import GatewayProcess

BOGUS = "egk_0123456789abcdef_" + "2" * 48


secured = module_gateway("ls-secured", auth=True)
open_gateway = module_gateway("ls-open")


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    return clean_workdir(monkeypatch, tmp_path)


def eg(gateway: GatewayProcess, credentials: pathlib.Path, *args: str, **env: str) -> Result:
    base = {
        "EG_URL": gateway.events_url,
        "EG_CONFIG_URL": gateway.config_url,
        "EG_CREDENTIALS_FILE": str(credentials),
    }
    return CliRunner().invoke(cli, list(args), env={**base, **env})


def claim(gateway: GatewayProcess, credentials: pathlib.Path, *names: str) -> None:
    for name in names:
        done = eg(gateway, credentials, "spaces", "claim", name)
        assert done.exit_code == 0, done.output


def listed(done: Result) -> list[str]:
    assert done.exit_code == 0, done.output
    return [item["name"] for item in json.loads(done.stdout)]


def test_without_a_space_every_saved_key_is_asked_and_the_union_listed(secured, tmp_path):
    mine = tmp_path / "mine.json"
    claim(secured, mine, "ls-beta", "ls-alpha")
    claim(secured, tmp_path / "someone-else.json", "ls-other")

    as_json = eg(secured, mine, "spaces", "ls", "-o", "json")
    table = eg(secured, mine, "spaces", "ls")

    assert listed(as_json) == ["ls-alpha", "ls-beta"]
    assert table.exit_code == 0, table.output
    rows = [line.split()[:2] for line in table.stdout.splitlines()]
    assert rows[0] == ["name", "emit"]
    assert [row for row in rows if row and row[0].startswith("ls-")] == [
        ["ls-alpha", "public"],
        ["ls-beta", "public"],
    ]
    assert table.stderr == ""


def test_a_chosen_space_or_key_still_lists_what_that_key_sees(secured, tmp_path):
    mine = tmp_path / "mine.json"
    claim(secured, mine, "ls-chosen-a", "ls-chosen-b")

    by_flag = eg(secured, mine, "spaces", "ls", "--space", "ls-chosen-b", "-o", "json")
    by_env = eg(secured, mine, "spaces", "ls", "-o", "json", EG_SPACE="ls-chosen-a")

    assert listed(by_flag) == ["ls-chosen-b"]
    assert listed(by_env) == ["ls-chosen-a"]


def test_a_refused_saved_key_is_skipped_with_a_warning(secured, tmp_path):
    mine = tmp_path / "mine.json"
    claim(secured, mine, "ls-kept")
    Credentials(mine).save(secured.config_url, "ls-lost", {"apiKey": BOGUS})

    done = eg(secured, mine, "spaces", "ls", "-o", "json")

    assert listed(done) == ["ls-kept"]
    assert done.stderr.startswith("Warning: the key saved for space ls-lost was refused (")
    assert BOGUS not in done.output


def test_when_every_saved_key_is_refused_it_says_so_in_one_line(secured, tmp_path):
    mine = tmp_path / "mine.json"
    Credentials(mine).save(secured.config_url, "ls-gone", {"apiKey": BOGUS})

    done = eg(secured, mine, "spaces", "ls")

    assert done.exit_code == 1
    assert done.stderr.startswith(
        f"Error: every key saved for this gateway in {mine} was refused (spaces ls-gone: "
    )
    assert done.stderr.endswith("pass --api-key, or claim a space: eg spaces claim NAME\n")


def test_without_saved_keys_the_gateway_answer_is_unchanged(secured, tmp_path):
    done = eg(secured, tmp_path / "none.json", "spaces", "ls")

    assert done.exit_code == 1
    assert done.stderr.startswith("Error: Missing API key")


def test_an_open_gateway_still_lists_every_space(open_gateway, tmp_path):
    mine = tmp_path / "mine.json"
    claim(open_gateway, mine, "ls-open-mine")
    claim(open_gateway, tmp_path / "theirs.json", "ls-open-theirs")

    names = listed(eg(open_gateway, mine, "spaces", "ls", "-o", "json"))

    assert {"ls-open-mine", "ls-open-theirs"} <= set(names)
