"""The credentials file: where it is, its modes, one key per (Configuration API, space), and
its place as the last source of a command's key."""

from __future__ import annotations

import json
import pathlib
import stat
import textwrap
import threading

import click
import pytest
from click.testing import CliRunner

from eventgateway.cli.context import CliOptions, gateway_options
from eventgateway.cli.credentials import Credentials, config_base, credentials_path
from eventgateway.errors import ConfigError

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")
LOCAL = "http://localhost:4001"


def claimed(key: str, key_id: str = "k1") -> dict[str, object]:
    return {"name": "acme-crm", "apiKey": key, "keyId": key_id, "scopes": ["admin", "emit"]}


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def creds_file(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "home" / "eventgateway" / "credentials.json"
    monkeypatch.setenv("EG_CREDENTIALS_FILE", str(path))
    return path


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "service"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


# -- where the file is -------------------------------------------------------------------------


def test_the_file_follows_eg_credentials_file_then_xdg_then_home(tmp_path):
    home = pathlib.Path.home()

    assert credentials_path({"EG_CREDENTIALS_FILE": "/x/c.json", "XDG_CONFIG_HOME": "/cfg"}) == (
        pathlib.Path("/x/c.json")
    )
    assert credentials_path({"XDG_CONFIG_HOME": "/cfg"}) == pathlib.Path(
        "/cfg/eventgateway/credentials.json"
    )
    # A relative XDG_CONFIG_HOME is invalid by the XDG spec, and ignored.
    assert credentials_path({"XDG_CONFIG_HOME": "rel"}) == (
        home / ".config" / "eventgateway" / "credentials.json"
    )
    assert credentials_path({}) == home / ".config" / "eventgateway" / "credentials.json"


def test_gateways_are_named_by_their_configuration_api():
    assert config_base("http://localhost:4000", None, "acme") == LOCAL
    assert config_base("localhost:4000/", None, "acme") == LOCAL
    assert config_base("http://acme.localhost:4000", None, "acme") == LOCAL
    assert config_base("http://x:1", "http://cfg:9/", "acme") == "http://cfg:9"
    assert config_base("ftp://x", None, "acme") is None


# -- writing and reading -----------------------------------------------------------------------


def test_a_saved_key_is_private_to_the_user(creds_file):
    Credentials(creds_file).save(LOCAL, "acme-crm", claimed("egk_secret"))

    assert mode(creds_file) == 0o600
    assert mode(creds_file.parent) == 0o700
    document = json.loads(creds_file.read_text())
    assert document["version"] == 1
    entry = document["gateways"][LOCAL]["acme-crm"]
    assert (entry["apiKey"], entry["keyId"], entry["scopes"]) == (
        "egk_secret",
        "k1",
        ["admin", "emit"],
    )
    # No temporary file is left behind.
    assert sorted(path.name for path in creds_file.parent.iterdir()) == [
        "credentials.json",
        "credentials.json.lock",
    ]


def test_an_existing_directory_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    Credentials(shared / "c.json").save(LOCAL, "acme", claimed("egk_a"))

    assert mode(shared) == 0o755
    assert mode(shared / "c.json") == 0o600


def test_keys_are_kept_per_gateway_and_space(creds_file):
    credentials = Credentials(creds_file)
    credentials.save(LOCAL, "acme-crm", claimed("egk_a"))
    credentials.save(LOCAL, "acme-users", claimed("egk_b"))
    credentials.save("https://gw.example.com:4001", "acme-crm", claimed("egk_c"))
    credentials.save(LOCAL, "acme-crm", claimed("egk_d", "k2"))  # claimed again: replaced

    assert credentials.get(LOCAL, "acme-crm").api_key == "egk_d"
    assert credentials.get(LOCAL, "acme-users").api_key == "egk_b"
    assert credentials.get("https://gw.example.com:4001", "acme-crm").api_key == "egk_c"
    assert credentials.get(LOCAL, "other") is None
    assert credentials.get("http://127.0.0.1:4001", "acme-crm") is None


def test_a_gateway_switched_to_tls_keeps_its_keys_but_never_the_other_way(creds_file):
    credentials = Credentials(creds_file)
    credentials.save("http://gw.example.com:4001", "acme-crm", claimed("egk_plain"))
    credentials.save("https://gw.example.com:4011", "acme-crm", claimed("egk_tls"))

    assert credentials.get("https://gw.example.com:4001", "acme-crm").api_key == "egk_plain"
    assert credentials.get("http://gw.example.com:4011", "acme-crm") is None  # not in clear
    assert credentials.get("https://gw.example.com:4002", "acme-crm") is None
    credentials.save("https://gw.example.com:4001", "acme-users", claimed("egk_users"))
    assert {n: k.api_key for n, k in credentials.saved("https://gw.example.com:4001").items()} == {
        "acme-crm": "egk_plain",
        "acme-users": "egk_users",
    }
    assert list(credentials.saved("http://gw.example.com:4011")) == []


def test_forgetting_a_key(creds_file):
    credentials = Credentials(creds_file)
    assert not credentials.forget(LOCAL, "acme-crm")  # no file yet: nothing to do
    credentials.save(LOCAL, "acme-crm", claimed("egk_a", "k1"))

    assert not credentials.forget(LOCAL, "acme-crm", key_id="k9")  # another key: kept
    assert credentials.get(LOCAL, "acme-crm") is not None
    assert credentials.forget(LOCAL, "acme-crm", key_id="k1")
    assert credentials.get(LOCAL, "acme-crm") is None
    assert json.loads(creds_file.read_text())["gateways"] == {}


def test_concurrent_saves_keep_every_key(creds_file):
    def save(index: int) -> None:
        Credentials(creds_file).save(LOCAL, f"space-{index}", claimed(f"egk_{index}"))

    threads = [threading.Thread(target=save, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    saved = json.loads(creds_file.read_text())["gateways"][LOCAL]
    assert sorted(saved) == sorted(f"space-{index}" for index in range(16))


def test_a_broken_file_is_named(creds_file):
    creds_file.parent.mkdir(parents=True)
    creds_file.write_text("{not json")

    with pytest.raises(ConfigError, match=r"credentials\.json is not JSON.*fix or remove it"):
        Credentials(creds_file).get(LOCAL, "acme")
    creds_file.write_text('{"gateways": []}')
    with pytest.raises(ConfigError, match="not an eventgateway credentials file"):
        Credentials(creds_file).get(LOCAL, "acme")


def test_a_file_others_can_read_is_warned_about(creds_file, capsys):
    Credentials(creds_file).save(LOCAL, "acme", claimed("egk_a"))
    creds_file.chmod(0o644)

    assert Credentials(creds_file).get(LOCAL, "acme").api_key == "egk_a"
    assert f"chmod 600 {creds_file}" in capsys.readouterr().err


# -- the last source of a command's key --------------------------------------------------------

SERVICE = """
service: crm-service
provider:
  name: eventgateway
custom:
  eventgateway:
    space: acme-crm
    {key}
"""


def write_service(directory: pathlib.Path, key_line: str = "") -> None:
    text = textwrap.dedent(SERVICE).replace("{key}", key_line)
    (directory / "serverless.yml").write_text(text, encoding="utf-8")


def options_of(*args: str, service: bool = False, env: dict[str, str] | None = None) -> CliOptions:
    seen: list[CliOptions] = []

    @click.command()
    @gateway_options(service=service)
    def show(*, options: CliOptions, **_: object) -> None:
        seen.append(options)

    result = CliRunner().invoke(show, list(args), env=env)
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize("service", [False, True])
def test_the_credentials_file_is_the_last_source_of_the_key(workdir, creds_file, service):
    Credentials(creds_file).save(LOCAL, "acme-crm", claimed("egk_saved"))
    write_service(workdir)

    saved = options_of(service=service)
    assert (saved.api_key, saved.api_key_source) == ("egk_saved", "credentials")

    write_service(workdir, "apiKey: egk_file")
    in_file = options_of(service=service)
    assert (in_file.api_key, in_file.api_key_source) == ("egk_file", "service")

    from_env = options_of(service=service, env={"EG_API_KEY": "egk_env"})
    assert (from_env.api_key, from_env.api_key_source) == ("egk_env", "flag")

    flag = options_of("--api-key", "egk_flag", service=service, env={"EG_API_KEY": "egk_env"})
    assert (flag.api_key, flag.api_key_source) == ("egk_flag", "flag")


@pytest.mark.parametrize("service", [False, True])
def test_a_saved_key_is_only_used_for_its_gateway_and_space(workdir, creds_file, service):
    Credentials(creds_file).save(LOCAL, "acme-crm", claimed("egk_saved"))
    write_service(workdir)

    assert options_of("--space", "other", service=service).api_key is None
    assert options_of("--url", "http://127.0.0.1:4000", service=service).api_key is None
    assert options_of("--config-url", "http://localhost:4001", service=service).api_key == (
        "egk_saved"
    )
    # A hosted-style URL reaches the same Configuration API.
    hosted = options_of("--url", "http://acme-crm.localhost:4000", service=service)
    assert hosted.api_key == "egk_saved"


def test_without_a_credentials_file_nothing_changes(workdir, creds_file):
    assert options_of().api_key is None
    assert not creds_file.exists()
