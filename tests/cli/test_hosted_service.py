"""A service whose url is hosted-style (`eg serve --domain localhost`, url
http://<space>.localhost:PORT, no `space:`): deploy, info and remove work in the space the
host names, as every other command does, and print URLs the gateway routes."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from tests.support.process import GatewayProcess

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")
SPACE = "hosted-svc"
HANDLER = (
    "def handler(event, context):\n"
    "    return {'message': 'success'}\n\n"
    "def get_user(event, context):\n"
    "    return {'statusCode': 200, 'body': 'user ' + event['data']['params']['id']}\n"
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    data = tmp_path_factory.mktemp("hosted") / "data"
    process = GatewayProcess(data, "--domain", "localhost").start()
    yield process
    process.stop()


@pytest.fixture
def service_dir(
    gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> pathlib.Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handler.py").write_text(HANDLER, encoding="utf-8")
    (tmp_path / "serverless.yml").write_text(
        "service: hostsvc\n"
        "provider: {name: eventgateway, runtime: python3.11}\n"
        "custom:\n  eventgateway:\n"
        f"    url: http://{SPACE}.localhost:{gateway.events_port}\n"
        f"    configurationUrl: {gateway.config_url}\n"
        "functions:\n"
        "  addUserToCRM:\n    handler: handler.handler\n"
        "    events:\n      - eventgateway:\n          event: user.created\n"
        "  getUser:\n    handler: handler.get_user\n"
        "    events:\n      - eventgateway:\n          event: http\n"
        "          path: /users/:id\n          method: GET\n",
        encoding="utf-8",
    )
    return tmp_path


def eg(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert (result.exit_code, result.stderr) == (0, ""), (result.stdout, result.stderr)
    return result


# Without --space, the space is the one the host names; with it, the same space is named.
@pytest.mark.parametrize("space_flag", [[], ["--space", SPACE]], ids=["inferred", "given"])
def test_deploy_info_and_remove_work_in_the_space_the_host_names(gateway, service_dir, space_flag):
    base = f"http://{SPACE}.localhost:{gateway.events_port}"

    deployed = eg("deploy", *space_flag).stdout
    info = eg("info", *space_flag).stdout
    functions = httpx.get(f"{gateway.config_url}/v1/spaces/{SPACE}/functions").json()
    user = httpx.get(
        f"{gateway.events_url}/users/7",
        headers={"Host": f"{SPACE}.localhost:{gateway.events_port}"},
        timeout=60,
    )
    removed = eg("remove", *space_flag).stdout

    assert f"to space {SPACE} at {gateway.config_url}" in deployed.splitlines()[0]
    # The host names the space, and the gateway routes <space>.<domain>/x as /<space>/x:
    # the path of a printed URL does not repeat it.
    assert f"  GET     {base}/users/:id → getUser" in deployed.splitlines()
    assert f"Events: emit to {base}/  (eg emit --event TYPE --data JSON)" in deployed
    assert f"space:   {SPACE}" in info.splitlines()
    assert f"  GET     {base}/users/:id" in info.splitlines()
    assert sorted(item["functionId"] for item in functions["functions"]) == [
        "addUserToCRM",
        "getUser",
    ]
    assert (user.status_code, user.text) == (200, "user 7")  # what the printed URL reaches
    assert "Removed hostsvc: 6 resources." in removed
