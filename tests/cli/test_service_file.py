"""Every `eg` command takes the gateway, space and key from `custom.eventgateway` alike.

Commands other than deploy/info/remove read the file one key at a time
(cli/service_file.py), `eg deploy` reads it whole; both go through one check
(deploy/manifest.py `gateway_setting`) and one resolution (cli/context.py
`resolve_options`), so a setting works, or fails with the same file:line message, for all.
"""

from __future__ import annotations

import pathlib
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from tests.support.ports import free_port
from tests.support.process import GatewayProcess

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")

# Each client command QA named, plus the service commands that already read the file right.
COMMANDS = {
    "functions ls": ["functions", "ls"],
    "events ls": ["events", "ls"],
    "dead-letters ls": ["dead-letters", "ls"],
    "logs": ["logs", "-f", "hello"],
    "invoke": ["invoke", "-f", "hello"],
    "keys ls": ["keys", "ls"],
    "spaces ls": ["spaces", "ls"],
    "emit": ["emit", "--event", "user.created"],
    "deploy": ["deploy", "--dry-run"],
    "info": ["info"],
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("service-file") / "data").start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EG_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_service(directory: pathlib.Path, settings: str) -> None:
    text = "service: svc\nprovider:\n  name: eventgateway\ncustom:\n  eventgateway:\n"
    (directory / "serverless.yml").write_text(text + textwrap.indent(settings, "    "))


def eg(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


# -- configurationUrl ----------------------------------------------------------------------


def test_every_command_talks_to_the_configuration_url_of_the_file(gateway, workdir):
    space = "config-url-everywhere"
    # Nothing listens at url, nor at the Configuration API derived from it (port 4001 of a
    # loopback address no test uses): only configurationUrl reaches the gateway.
    write_service(
        workdir,
        f"url: http://127.0.0.9:{free_port()}\n"
        f"configurationUrl: {gateway.config_url}\n"
        f"space: {space}\n",
    )
    claimed = eg("spaces", "claim", space)
    assert claimed.exit_code == 0, claimed.output
    created = httpx.post(
        f"{gateway.config_url}/v1/spaces/{space}/functions",
        json={"functionId": "hello", "type": "http", "provider": {"url": gateway.events_url}},
        timeout=10,
    )
    assert created.status_code == 201, created.text

    for name in ("functions ls", "events ls", "dead-letters ls", "keys ls", "spaces ls"):
        result = eg(*COMMANDS[name], "-o", "json")
        assert result.exit_code == 0, (name, result.output)
    for name in ("logs", "invoke"):
        result = eg(*COMMANDS[name])
        assert result.exit_code == 0, (name, result.output)
    assert '"functionId": "hello"' in eg("functions", "ls", "-o", "json").stdout


def test_a_configuration_url_flag_or_variable_wins_over_the_file(gateway, workdir):
    write_service(workdir, "configurationUrl: http://127.0.0.9:1\nspace: flag-wins\n")

    by_flag = eg("functions", "ls", "--config-url", gateway.config_url)
    by_variable = eg("functions", "ls", env={"EG_CONFIG_URL": gateway.config_url})

    assert (by_flag.exit_code, by_variable.exit_code) == (0, 0), by_flag.output


# -- the same check and message for every command ------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("url: notaurl", "custom.eventgateway.url: 'notaurl' is not an http:// or https:// URL"),
        ("url: http://a b:4000", "custom.eventgateway.url: 'http://a b:4000' is not an http"),
        (
            "configurationUrl: localhost:4001",
            "custom.eventgateway.configurationUrl: 'localhost:4001' is not an http",
        ),
        ("space: Bad Space!", "custom.eventgateway.space: space 'Bad Space!' is not valid"),
        ("space: [a]", "custom.eventgateway.space: must be a string, got a list"),
    ],
    ids=["no-scheme", "space-in-host", "config-url", "space", "not-a-string"],
)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_bad_setting_fails_every_command_naming_file_and_line(workdir, command, setting, message):
    write_service(workdir, setting + "\n")

    result = eg(*COMMANDS[command])

    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: serverless.yml:6: {message}"), result.output
    assert len(result.output.splitlines()) == 1


def test_a_bad_setting_a_flag_overrides_is_not_read(gateway, workdir):
    write_service(workdir, "url: notaurl\nspace: Bad Space!\n")

    result = eg(
        "functions", "ls", "--url", gateway.events_url, "--config-url", gateway.config_url,
        "--space", "overridden",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
