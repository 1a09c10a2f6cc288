"""`--url`/`EG_URL`/`url` in serverless.yml with a path: a last segment naming the space
is dropped, any other path is a prefix (a gateway behind a reverse proxy).

QA: `EG_URL=http://localhost:4000/acme-crm eg emit …` printed "Event emitted" while the
event went to `/acme-crm/default/` (`/acme-crm/acme-crm/` with EG_SPACE=acme-crm), where
nothing is subscribed — and `eg deploy` prints exactly that URL as where to emit.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.context import resolve_options
from eventgateway.cli.main import cli
from tests.cli.kit import clean_workdir
from tests.cli.test_emit import USER, create, eg_async, subscribe_receiver
from tests.support.process import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("url-paths") / "data").start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    return clean_workdir(monkeypatch, tmp_path)


def eg(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.mark.parametrize(
    ("space", "how"),
    [
        ("path-env", "EG_URL"),
        ("path-slash", "EG_URL with a slash and EG_SPACE"),
        ("path-flag", "--url"),
    ],
)
async def test_an_events_url_naming_the_space_emits_to_that_space(gateway, receiver, space, how):
    path = subscribe_receiver(gateway, receiver, space, "user.created")
    url = f"{gateway.events_url}/{space}"
    env = {"EG_CONFIG_URL": gateway.config_url}
    args = ["emit", "--event", "user.created", "--data", json.dumps(USER), "--id", space]
    if how == "--url":
        args += ["--url", url]
    elif how == "EG_URL":
        env["EG_URL"] = url
    else:
        env |= {"EG_URL": url + "/", "EG_SPACE": space}

    done = await eg_async(env, *args)

    assert (done.returncode, done.stderr) == (0, "")
    [call] = await receiver.wait_for(1, path)
    assert call.json()["id"] == space


def test_configuration_commands_work_in_the_space_the_url_names(gateway):
    create(gateway, "path-ls", "eventtypes", {"name": "user.created"})

    done = eg(
        "event-types",
        "ls",
        "-o",
        "json",
        EG_URL=f"{gateway.events_url}/path-ls/",
        EG_CONFIG_URL=gateway.config_url,
    )

    assert done.exit_code == 0, done.output
    assert [item["name"] for item in json.loads(done.stdout)] == ["user.created"]


@pytest.mark.parametrize(
    ("url", "space", "resolved"),
    [
        ("http://127.0.0.1:9/acme-crm", "acme-crm", ("http://127.0.0.1:9", "acme-crm")),
        ("http://127.0.0.1:9/acme-crm/", None, ("http://127.0.0.1:9", "acme-crm")),
        # A reverse proxy's prefix stays; so does a path naming another space than given.
        ("https://api.test/eventgateway", "acme", ("https://api.test/eventgateway", "acme")),
        ("https://api.test/eg/acme", "acme", ("https://api.test/eg", "acme")),
        ("http://127.0.0.1:9/acme-crm", "other", ("http://127.0.0.1:9/acme-crm", "other")),
    ],
)
def test_a_last_segment_naming_the_space_is_dropped_and_any_other_path_kept(url, space, resolved):
    options = resolve_options(url=url, space=space)

    assert (options.url, options.space) == resolved


def test_a_url_path_in_serverless_yml_is_read_the_same(workdir):
    (workdir / "serverless.yml").write_text(
        "service: svc\ncustom:\n  eventgateway:\n"
        "    url: http://127.0.0.1:9/acme-crm\n    space: acme-crm\n",
        encoding="utf-8",
    )

    options = resolve_options()

    assert (options.url, options.space) == ("http://127.0.0.1:9", "acme-crm")


def test_info_shows_the_url_and_space_the_path_named(gateway, workdir):
    (workdir / "serverless.yml").write_text(
        "service: svc\nprovider:\n  name: eventgateway\ncustom:\n  eventgateway:\n"
        f"    url: {gateway.events_url}/yml-space/\n"
        f"    configurationUrl: {gateway.config_url}\n",
        encoding="utf-8",
    )

    done = eg("info", "-o", "json")

    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    assert (shown["url"], shown["space"]) == (gateway.events_url, "yml-space")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--url", "http://privsp.localhost:9", "--space", "acme-crm"], {}),
        ([], {"EG_URL": "http://privsp.localhost:9", "EG_SPACE": "acme-crm"}),
    ],
)
def test_a_host_naming_another_space_than_given_is_a_usage_error(args, env):
    done = eg("functions", "ls", *args, **env)

    assert done.exit_code == 2
    assert done.stderr.splitlines()[-1] == (
        "Error: the URL http://privsp.localhost:9 names the space 'privsp' in its host (the "
        "gateway routes it to /privsp/), but the space given is 'acme-crm' (--space, EG_SPACE "
        "or custom.eventgateway.space): leave one of them out, or make them the same"
    )
