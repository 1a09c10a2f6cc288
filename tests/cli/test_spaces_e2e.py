"""Claiming on deploy, `eg spaces` and `eg keys` against a real `eg serve` (auth mode, and
open where it matters).

Each test works in its own space of a shared gateway and has its own credentials file:
two credentials files are two people.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import stat

import httpx
import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.context import CliOptions
from eventgateway.cli.credentials import Credentials
from eventgateway.cli.deploy import _where, run_deploy
from eventgateway.cli.main import cli
from eventgateway.deploy.manifest import load_service
from tests.cli.kit import module_gateway
from tests.support.process import GatewayProcess

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "crm-service"
VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")


secured = module_gateway("secured", auth=True)
open_gateway = module_gateway("open")


@pytest.fixture
def service_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "crm-service"
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns(".eventgateway"))
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture
def space(request: pytest.FixtureRequest) -> str:
    return request.node.name.split("[")[0].removeprefix("test_")[:40].replace("_", "-")


class Person:
    """Someone running `eg` with their own credentials file."""

    def __init__(self, gateway: GatewayProcess, space: str, credentials: pathlib.Path) -> None:
        self.gateway = gateway
        self.space = space
        self.credentials = Credentials(credentials)

    def eg(self, *args: str, **env: str) -> Result:
        base = {
            "EG_URL": self.gateway.events_url,
            "EG_CONFIG_URL": self.gateway.config_url,
            "EG_SPACE": self.space,
            "EG_CREDENTIALS_FILE": str(self.credentials.path),
        }
        return CliRunner().invoke(cli, list(args), env={**base, **env})

    def ok(self, *args: str, **env: str) -> Result:
        result = self.eg(*args, **env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def saved_key(self) -> str | None:
        saved = self.credentials.get(self.gateway.config_url, self.space)
        return None if saved is None else saved.api_key


def person(gateway: GatewayProcess, space: str, tmp_path: pathlib.Path, name: str) -> Person:
    return Person(gateway, space, tmp_path / name / "credentials.json")


# -- claiming on deploy --------------------------------------------------------------------------


def test_the_first_deploy_claims_the_space_and_later_commands_use_its_key(
    secured, service_dir, space, tmp_path
):
    ada = person(secured, space, tmp_path, "ada")

    first = ada.ok("deploy").stdout
    again = ada.ok("deploy").stdout
    listed = ada.ok("functions", "ls").stdout

    assert f"Claimed space {space}; its admin key is saved in {ada.credentials.path}\n" in first
    assert "Deployed crm-service: 3 created" in first
    assert "Claimed" not in again
    assert "No changes" in again
    assert "addUserToCRM" in listed
    assert ada.saved_key() is not None
    assert stat.S_IMODE(ada.credentials.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ada.credentials.path.parent.stat().st_mode) == 0o700


def test_deploying_to_a_space_someone_else_claimed_fails_in_one_line(
    secured, service_dir, space, tmp_path
):
    person(secured, space, tmp_path, "ada").ok("deploy")
    bob = person(secured, space, tmp_path, "bob")

    refused = bob.eg("deploy")

    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: space {space} is already claimed by someone else: deploy to another space "
        "(custom.eventgateway.space) or ask its owner for a key (EG_API_KEY)\n"
    )
    assert bob.saved_key() is None


def test_a_refused_key_is_named_with_where_it_came_from(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("deploy")
    bogus = "egk_0123456789abcdef_" + "0" * 48

    refused = ada.eg("deploy", EG_API_KEY=bogus)

    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: the API key for space {space} was refused: ")
    assert refused.stderr.endswith("(the key came from --api-key or EG_API_KEY)\n")
    assert bogus not in refused.stderr


def test_a_refused_key_of_the_service_file_names_that_file(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("deploy")
    bogus = "egk_0123456789abcdef_" + "2" * 48
    declared = (service_dir / "serverless.yml").read_text()
    alternative = declared.replace("apiKey: ${env:EG_API_KEY}", f"accessKey: {bogus}")
    assert alternative != declared
    (service_dir / "alt.yml").write_text(alternative)

    refused = ada.eg("deploy", "-c", "alt.yml")

    assert refused.exit_code == 1
    assert refused.stderr.endswith(
        "(the key came from custom.eventgateway.apiKey (or accessKey) in alt.yml)\n"
    )


def test_a_refused_saved_key_names_the_credentials_file(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("spaces", "claim", space)
    # A gateway that lost its data no longer knows the saved key.
    ada.credentials.save(secured.config_url, space, {"apiKey": "egk_0123456789abcdef_" + "1" * 48})

    refused = ada.eg("deploy")

    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: the API key for space {space} was refused: ")
    assert refused.stderr.endswith(
        f"(the key came from the credentials file {ada.credentials.path})\n"
    )


def test_an_explicit_key_wins_and_nothing_is_claimed(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("spaces", "claim", space)
    key = ada.saved_key()
    assert key is not None
    carol = person(secured, space, tmp_path, "carol")

    shown = json.loads(carol.ok("deploy", "-o", "json", EG_API_KEY=key).stdout)

    assert shown["claimed"] is False
    assert [action["op"] for action in shown["actions"]] == ["create"] * 3
    assert not carol.credentials.path.exists()


def test_json_output_says_that_the_deploy_claimed(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")

    first = json.loads(ada.ok("deploy", "-o", "json").stdout)
    second = json.loads(ada.ok("deploy", "-o", "json").stdout)

    assert (first["claimed"], second["claimed"]) == (True, False)


def test_a_dry_run_claims_nothing(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")

    planned = ada.ok("deploy", "--dry-run").stdout
    shown = json.loads(ada.ok("deploy", "--dry-run", "-o", "json").stdout)

    # Planned as if the space were empty, as the deploy that claims it would find it.
    assert f"Would claim space {space} first (no key for it;" in planned
    assert "  + function      addUserToCRM (python3.11, handler.handler)\n" in planned
    assert "Would deploy crm-service: 3 created, 0 changed, 0 removed (dry run" in planned
    assert (shown["claimed"], shown["wouldClaim"]) == (False, True)
    assert [action["op"] for action in shown["actions"]] == ["create"] * 3
    assert not ada.credentials.path.exists()
    assert person(secured, space, tmp_path, "bob").ok("spaces", "claim", space)


def test_a_dry_run_with_a_key_plans_against_the_space(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("deploy")

    planned = ada.ok("deploy", "--dry-run").stdout

    assert "Would claim" not in planned
    assert "No changes: crm-service (stage dev) is up to date." in planned


def test_deploy_remove_and_info_name_the_configuration_api_and_read_cleanly(
    open_gateway, service_dir, space, tmp_path, monkeypatch
):
    ada = person(open_gateway, space, tmp_path, "ada")
    where = f"crm-service (stage dev) {{}} space {space} at {open_gateway.config_url}\n"

    before = ada.ok("info").stdout
    with monkeypatch.context() as elsewhere_dir:
        elsewhere_dir.chdir(tmp_path)
        elsewhere = ada.ok("info", "-c", str(service_dir / "serverless.yml")).stdout
    deployed = ada.ok("deploy").stdout
    removed = ada.ok("remove").stdout

    assert before.endswith("Not deployed: run `eg deploy` in this directory.\n")
    assert elsewhere.endswith(f"Not deployed: run `eg deploy` in '{service_dir}'.\n")
    assert deployed.startswith("Deploying " + where.format("to"))
    assert removed.startswith("Removing " + where.format("from"))


@pytest.mark.parametrize(
    ("url", "config_url", "shown"),
    [
        ("http://acme-crm.localhost:4000", None, "http://localhost:4001"),
        ("http://127.0.0.1:14400", None, "http://127.0.0.1:4001"),
        ("http://127.0.0.1:14400", "http://127.0.0.1:14401", "http://127.0.0.1:14401"),
    ],
)
def test_the_deploy_line_names_the_configuration_api_it_talks_to(url, config_url, shown):
    options = CliOptions(url=url, config_url=config_url, space="acme-crm")
    service = load_service(EXAMPLE / "serverless.yml", stage=None, options={})

    assert _where(options, service).endswith(f"to space acme-crm at {shown}")


def test_on_an_open_gateway_a_taken_space_still_deploys(open_gateway, service_dir, space, tmp_path):
    ada = person(open_gateway, space, tmp_path, "ada")
    bob = person(open_gateway, space, tmp_path, "bob")

    first = json.loads(ada.ok("deploy", "-o", "json").stdout)
    second = json.loads(bob.ok("deploy", "-o", "json").stdout)

    assert (first["claimed"], second["claimed"]) == (True, False)
    assert second["actions"] == []
    assert ada.saved_key() is not None
    assert bob.saved_key() is None


def test_eg_dev_deploys_without_claiming(open_gateway, service_dir, space, tmp_path, monkeypatch):
    monkeypatch.setenv("EG_CREDENTIALS_FILE", str(tmp_path / "dev" / "credentials.json"))
    options = CliOptions(
        url=open_gateway.events_url, config_url=open_gateway.config_url, space=space
    )
    service = load_service(service_dir / "serverless.yml").with_space(space)

    run_deploy(options, service, claim=False)

    spaces = httpx.get(f"{open_gateway.config_url}/v1/spaces", timeout=10).json()["spaces"]
    assert space not in [item["name"] for item in spaces]
    assert not (tmp_path / "dev").exists()


# -- eg spaces and eg keys -----------------------------------------------------------------------


def test_claim_then_manage_keys(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("spaces", "claim", space, "--private")

    created = ada.ok("keys", "create", "--scope", "emit", "--expires", "30d")
    emit_key = created.stdout.strip()
    listed = json.loads(ada.ok("keys", "ls", "-o", "json").stdout)
    space_shown = json.loads(ada.ok("spaces", "get", "-o", "json").stdout)

    assert emit_key.startswith("egk_")
    assert "only time the key is shown" in created.stderr
    assert {tuple(item["scopes"]) for item in listed} == {("admin", "emit", "read"), ("emit",)}
    assert all("apiKey" not in item and emit_key not in json.dumps(item) for item in listed)
    assert space_shown["emitRequiresKey"] is True

    def emit(key: str | None) -> int:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        response = httpx.post(
            f"{secured.events_url}/{space}/",
            json={"specversion": "1.0", "type": "t", "source": "s", "id": "1"},
            headers={"Content-Type": "application/cloudevents+json", **headers},
            timeout=10,
        )
        return response.status_code

    assert emit(None) == 401
    assert emit(emit_key) < 400
    key_id = next(item["keyId"] for item in listed if item["scopes"] == ["emit"])
    assert ada.ok("keys", "revoke", key_id).stdout == f"Revoked key {key_id} of space {space}.\n"
    assert emit(emit_key) == 401
    assert ada.saved_key() is not None  # the admin key stays


def test_spaces_ls_update_and_rm(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("spaces", "claim", space)

    listed = json.loads(ada.ok("spaces", "ls", "-o", "json").stdout)
    private = ada.ok("spaces", "update", "--private").stdout
    removed = ada.ok("spaces", "rm", space, "--yes").stdout

    assert [item["name"] for item in listed] == [space]  # a space key sees its own space
    assert private == f"Space {space} is private: emitting needs a key with the emit scope.\n"
    assert removed.startswith(f"Removed space {space}.\n")
    assert ada.saved_key() is None
    # The name stays taken: only the operator may claim a deleted space again.
    again = person(secured, space, tmp_path, "bob").eg("spaces", "claim", space)
    assert again.exit_code == 1
    assert "only the operator may claim it again" in again.stderr


def test_a_space_with_configuration_is_not_removed(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("deploy")

    kept = ada.eg("spaces", "rm", space, "--yes")

    assert kept.exit_code == 1
    assert "still holds configuration" in kept.stderr
    assert ada.saved_key() is not None
    ada.ok("remove")
    ada.ok("spaces", "rm", space, "--yes")


def test_a_deleted_space_cannot_be_claimed_by_a_deploy(secured, service_dir, space, tmp_path):
    ada = person(secured, space, tmp_path, "ada")
    ada.ok("spaces", "claim", space)
    ada.ok("spaces", "rm", space, "--yes")

    refused = ada.eg("deploy")

    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: space {space} cannot be claimed (")
    assert "was deleted" in refused.stderr
    assert refused.stderr.endswith("ask the gateway's operator for a key (EG_API_KEY)\n")


def test_claiming_a_claimed_space_says_so(secured, service_dir, space, tmp_path):
    person(secured, space, tmp_path, "ada").ok("spaces", "claim", space)

    taken = person(secured, space, tmp_path, "bob").eg("spaces", "claim", space)

    assert taken.exit_code == 1
    assert taken.stderr.startswith(f"Error: cannot claim space {space}: ")
    assert "already exists" in taken.stderr
