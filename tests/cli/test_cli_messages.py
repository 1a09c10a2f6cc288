"""Mistakes on the command line get one clear line: the same port for both APIs, no
gateway for a dry run, the Configuration API given as --url, an empty --event; dead-letter
windows take durations as `eg logs` does; `eg info -s STAGE` says how to deploy that stage."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from tests.support.ports import free_port
from tests.support.process import GatewayProcess

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")


@pytest.fixture(scope="module")
def open_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("open") / "data").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("secured") / "data", auth=True).start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in (*VARIABLES, "EG_STAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def eg(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def write_service(directory: pathlib.Path, url: str, config_url: str, space: str) -> None:
    (directory / "serverless.yml").write_text(
        "service: messages\n"
        "provider: {name: eventgateway}\n"
        "custom:\n  eventgateway:\n"
        f"    url: {url}\n    configurationUrl: {config_url}\n    space: {space}\n"
        "functions:\n"
        "  hook:\n    type: http\n    url: http://127.0.0.1:9/hook\n"
        "    events:\n      - eventgateway:\n          event: user.created\n",
        encoding="utf-8",
    )


def test_one_port_for_both_apis_is_a_usage_error_naming_both_flags(tmp_path):
    port = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "eventgateway", "serve", "--no-auth", "--events-port", port,
         "--config-port", port, "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30, check=False, env=dict(os.environ),
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"Error: --events-port and --config-port are both {port}: the Events API and the "
        "Configuration API need a port each (by default 4000 and 4001)"
    )


def test_a_dry_run_without_a_gateway_says_so_as_a_deploy_does(workdir):
    nobody = f"http://127.0.0.1:{free_port()}"
    write_service(workdir, nobody, nobody, "no-gateway")

    planned = eg("deploy", "--dry-run")
    deployed = eg("deploy")

    assert planned.exit_code == 1
    assert planned.stderr.startswith(f"Error: cannot reach the gateway at {nobody}: ")
    assert planned.stderr.endswith("; start one with `eg serve`, or point --config-url at yours\n")

    # The same words; the request that failed is named, and differs (a list, a create).
    def unnamed(text: str) -> str:
        return re.sub(r" \((?:GET|POST) [^)]*\)", "", text)

    assert unnamed(planned.stderr) == unnamed(deployed.stderr)
    assert "(GET " in planned.stderr


def test_a_handler_module_missing_from_the_bundle_is_warned_about_at_deploy(workdir):
    # QA: a Python service whose handler file was missing deployed; calls then failed with
    # Runtime.ImportModuleError. Packaging comes before any request, so no gateway needed.
    nobody = f"http://127.0.0.1:{free_port()}"
    (workdir / "serverless.yml").write_text(
        "service: typo\nprovider: {name: eventgateway, runtime: python3.11}\n"
        f"custom: {{eventgateway: {{url: {nobody}, configurationUrl: {nobody}, space: typo}}}}\n"
        "functions:\n  ok: {handler: handler.main}\n  typo: {handler: handlr.main}\n"
        "  nested: {handler: lib/jobs.run}\n",
        encoding="utf-8",
    )
    (workdir / "handler.py").write_text("def main(event, context):\n    return 1\n")
    (workdir / "lib").mkdir()
    (workdir / "lib" / "jobs.py").write_text("def run(event, context):\n    return 2\n")

    planned = eg("deploy", "--dry-run")

    warnings = [line for line in planned.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: function typo: its handler 'handlr.main' needs handlr.py, which is not in "
        "the bundle (a typo in handler:, or a file package.patterns leaves out?); calls will "
        "fail with Runtime.ImportModuleError"
    ]


def test_emitting_to_the_configuration_api_says_that_url_is_the_wrong_api(open_gateway, secured):
    claimed = eg("spaces", "claim", "wrong-port", EG_URL=secured.events_url,
                 EG_CONFIG_URL=secured.config_url)  # fmt: skip
    assert claimed.exit_code == 0, claimed.stderr
    secured_env = {"EG_CONFIG_URL": secured.config_url, "EG_SPACE": "wrong-port"}
    emit = ("emit", "--event", "user.created", "--data", "{}")

    with_key = eg(*emit, "--url", secured.config_url, **secured_env)  # 403 there
    without = eg(*emit, "--url", open_gateway.config_url, EG_SPACE="wrong-port")  # 404
    events_api = eg(*emit, "--url", secured.events_url, **secured_env)

    for result, url, status in ((with_key, secured.config_url, 403),
                                (without, open_gateway.config_url, 404)):  # fmt: skip
        assert result.exit_code == 1
        assert result.stderr.startswith(
            f"Error: {url} is the gateway's Configuration API (it answered {status}: "
        )
        assert result.stderr.endswith(
            "): --url (EG_URL, url in serverless.yml) names the Events API, port 4000 by default\n"
        )
    assert (events_api.exit_code, events_api.stderr) == (0, "")  # the right port: emitted


def test_an_empty_event_type_is_a_usage_error_naming_the_option():
    result = eg("emit", "--event", "", "--data", "{}", EG_URL="http://127.0.0.1:9")

    assert result.exit_code == 2
    assert "Error: Invalid value for '--event': is empty: give the event type, e.g. --event " \
        "user.created" in result.stderr  # fmt: skip


def test_dead_letter_windows_take_durations(open_gateway):
    env = {"EG_URL": open_gateway.events_url, "EG_CONFIG_URL": open_gateway.config_url,
           "EG_SPACE": "durations"}  # fmt: skip

    redriven = eg("dead-letters", "redrive", "--since", "10m", **env)
    listed = eg("dead-letters", "ls", "--since", "2h", "--until", "1m", **env)
    wrong = eg("dead-letters", "ls", "--since", "10x", **env)

    assert (redriven.exit_code, redriven.stdout, redriven.stderr) == (
        0, "Redriven 0 dead letters.\n", ""
    )  # fmt: skip
    assert (listed.exit_code, listed.stdout) == (0, "No dead letters in space durations.\n")
    assert wrong.exit_code == 2
    assert "'--since': since '10x' is not a time" in wrong.stderr


def test_info_of_an_undeployed_stage_suggests_deploying_that_stage(open_gateway, workdir):
    write_service(workdir, open_gateway.events_url, open_gateway.config_url, "info-stage")

    result = eg("info", "-s", "prod")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("Not deployed: run `eg deploy -s prod` in this directory.\n")
