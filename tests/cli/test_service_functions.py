"""`eg invoke` and `eg logs` in a service directory take a function's serverless.yml key,
as `sls invoke -f` does, also when `name:` deploys it under another functionId."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from tests.support.process import GatewayProcess

VARIABLES = (
    "EG_URL",
    "EG_CONFIG_URL",
    "EG_SPACE",
    "EG_API_KEY",
    "EG_OUTPUT",
    "EG_DEBUG",
    "EG_STAGE",
)
SPACE = "renamed-fn"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("keys") / "data").start()
    yield process
    process.stop()


def write_service(directory: pathlib.Path, url: str, config_url: str) -> None:
    (directory / "handler.py").write_text(
        "def handler(event, context):\n"
        "    print('got', event['data'])\n"
        "    return {'message': 'success'}\n",
        encoding="utf-8",
    )
    (directory / "serverless.yml").write_text(
        "service: renamed\n"
        "provider: {name: eventgateway, runtime: python3.11}\n"
        "custom:\n  eventgateway:\n"
        f"    url: {url}\n    configurationUrl: {config_url}\n    space: {SPACE}\n"
        "functions:\n"
        "  addUserToCRM:\n    name: crm-add-user\n    handler: handler.handler\n"
        "  plain:\n    handler: handler.handler\n",
        encoding="utf-8",
    )


@pytest.fixture
def service_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    write_service(tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:2")
    return tmp_path


def eg(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_a_key_names_the_function_it_declares_an_id_or_unknown_name_stays(service_dir):
    from eventgateway.cli.service_functions import function_named

    assert function_named("addUserToCRM").function_id == "crm-add-user"
    assert function_named("crm-add-user").function_id == "crm-add-user"
    assert function_named("plain").function_id == "plain"
    assert function_named("elsewhere").function_id == "elsewhere"
    assert function_named("addUserToCRM", service_dir / "none.yml").function_id == "addUserToCRM"


def test_invoke_and_logs_take_the_key_and_an_unknown_name_is_said_to_be_neither(
    gateway, service_dir
):
    write_service(service_dir, gateway.events_url, gateway.config_url)
    deployed = eg("deploy")
    assert deployed.exit_code == 0, (deployed.stdout, deployed.stderr)

    invoked = eg("invoke", "-f", "addUserToCRM", "--data", '{"username": "ada"}', "--no-log")
    logged = eg("logs", "-f", "addUserToCRM")
    unknown = eg("logs", "nope")

    assert (invoked.exit_code, invoked.stderr) == (0, "")
    assert json.loads(invoked.stdout) == {"message": "success"}
    assert logged.exit_code == 0, logged.stderr
    assert "got {'username': 'ada'}" in logged.stdout
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        f"Error: no function 'nope' in space {SPACE}, and serverless.yml declares none by "
        "that key or name (its functions: addUserToCRM (deployed as crm-add-user), plain)\n"
    )
