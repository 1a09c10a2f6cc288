"""`eg spaces` and `eg keys`: what they print and save.

The gateway here is an httpx ``MockTransport`` answering in the Configuration API's shapes
(api/spaces.py), so the tests look only at output, the credentials file and the requests
sent. What the real gateway enforces is tested against `eg serve` in test_spaces_e2e.py.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import stat
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.context import CliOptions
from eventgateway.cli.credentials import Credentials
from eventgateway.cli.main import cli
from eventgateway.cli.spaces import expires_at
from eventgateway.sdk.sync import EventGateway

VARIABLES = ("EG_URL", "EG_CONFIG_URL", "EG_SPACE", "EG_API_KEY", "EG_OUTPUT", "EG_DEBUG")
CONFIG = "http://localhost:4001"
CLAIMED = {
    "name": "acme-crm",
    "apiKey": "egk_0123456789abcdef_secret",
    "keyId": "0123456789abcdef",
    "scopes": ["admin", "emit", "read"],
    "emitRequiresKey": False,
    "createdAt": "2026-11-26T18:00:00Z",
}
KEYS = [
    {
        "keyId": "0123456789abcdef",
        "scopes": ["admin", "emit", "read"],
        "expiresAt": None,
        "createdAt": "2026-11-26T18:00:00Z",
        "expired": False,
    },
    {
        "keyId": "fedcba9876543210",
        "scopes": ["emit"],
        "expiresAt": "2026-12-26T18:00:00Z",
        "createdAt": "2026-11-26T18:05:00Z",
        "expired": False,
        "apiKey": "egk_must_never_be_printed",  # a gateway that leaked it: still not shown
    },
]

Handler = Callable[[httpx.Request], httpx.Response]


class FakeGateway:
    """Scripted answers per (method, path); every request is kept."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], httpx.Response] = {}
        self.requests: list[httpx.Request] = []

    def answer(self, method: str, path: str, status: int, body: Any = None) -> None:
        content = b"" if body is None else json.dumps(body).encode()
        self.answers[(method, path)] = httpx.Response(status, content=content)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get((request.method, request.url.raw_path.decode()))
        if answer is None:
            return httpx.Response(404, json={"errors": [{"message": "404 page not found"}]})
        return answer

    def sent(self, method: str, path: str) -> httpx.Request:
        found = [r for r in self.requests if (r.method, r.url.raw_path.decode()) == (method, path)]
        assert found, [(r.method, r.url.path) for r in self.requests]
        return found[-1]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> FakeGateway:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    gateway = FakeGateway()

    def client(options: CliOptions) -> EventGateway:
        sdk = EventGateway(
            url=options.url,
            config_url=options.config_url,
            space=options.space,
            api_key=options.api_key,
        )
        sdk._http.close()
        sdk._http = httpx.Client(transport=httpx.MockTransport(gateway))
        return sdk

    monkeypatch.setattr(CliOptions, "gateway", client)
    return gateway


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Credentials:
    path = tmp_path / "config" / "eventgateway" / "credentials.json"
    monkeypatch.setenv("EG_CREDENTIALS_FILE", str(path))
    return Credentials(path)


def eg(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def ok(*args: str) -> Result:
    result = eg(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


# -- eg spaces claim -----------------------------------------------------------------------------


def test_claim_saves_the_key_and_says_where(fake, creds):
    fake.answer("POST", "/v1/spaces", 201, CLAIMED)

    result = ok("spaces", "claim", "acme-crm")

    assert result.stdout == f"Claimed space acme-crm; its admin key is saved in {creds.path}\n"
    assert CLAIMED["apiKey"] not in result.output
    assert json.loads(fake.sent("POST", "/v1/spaces").content) == {"name": "acme-crm"}
    assert creds.get(CONFIG, "acme-crm").api_key == CLAIMED["apiKey"]
    assert stat.S_IMODE(creds.path.stat().st_mode) == 0o600


def test_claim_private_and_json_output_without_the_secret(fake, creds):
    fake.answer("POST", "/v1/spaces", 201, {**CLAIMED, "emitRequiresKey": True})

    shown = json.loads(ok("spaces", "claim", "acme-crm", "--private", "-o", "json").stdout)

    assert json.loads(fake.sent("POST", "/v1/spaces").content) == {
        "name": "acme-crm",
        "emitRequiresKey": True,
    }
    assert "apiKey" not in shown
    assert shown["credentialsFile"] == str(creds.path)
    assert shown["emitRequiresKey"] is True


def test_claiming_a_taken_space_says_so(fake, creds):
    fake.answer(
        "POST", "/v1/spaces", 409, {"errors": [{"message": 'Space "acme-crm" already exists.'}]}
    )

    result = eg("spaces", "claim", "acme-crm")

    assert result.exit_code == 1
    assert result.stderr == (
        'Error: cannot claim space acme-crm: Space "acme-crm" already exists; choose another '
        "name, or ask its owner for a key (EG_API_KEY)\n"
    )
    assert not creds.path.exists()


def test_a_key_that_cannot_be_saved_is_printed_once(fake, creds, monkeypatch):
    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Credentials, "save", full_disk)
    fake.answer("POST", "/v1/spaces", 201, CLAIMED)

    result = ok("spaces", "claim", "acme-crm")

    assert "could not save the key of space acme-crm" in result.stderr
    assert CLAIMED["apiKey"] in result.stderr
    assert (
        result.stdout
        == "Claimed space acme-crm; its admin key is printed above, and nowhere else\n"
    )


# -- the other space commands --------------------------------------------------------------------


def test_spaces_ls_get_and_update(fake, creds):
    space = {"name": "acme-crm", "emitRequiresKey": True, "createdAt": "2026-11-26T18:00:00Z"}
    fake.answer("GET", "/v1/spaces", 200, {"spaces": [space]})
    fake.answer("GET", "/v1/spaces/acme-crm", 200, space)
    fake.answer("PATCH", "/v1/spaces/acme-crm", 200, {**space, "emitRequiresKey": False})

    rows = [line.split() for line in ok("spaces", "ls").stdout.splitlines() if line.strip()]
    fields = ok("spaces", "get", "acme-crm").stdout
    public = ok("spaces", "update", "--public", "--space", "acme-crm").stdout

    assert rows[0] == ["name", "emit", "createdAt"]
    assert rows[-1] == ["acme-crm", "key", "required", "2026-11-26T18:00:00Z"]
    assert "emitRequiresKey" in fields
    assert public == "Space acme-crm is public: anyone may emit to it.\n"
    assert json.loads(fake.sent("PATCH", "/v1/spaces/acme-crm").content) == {
        "emitRequiresKey": False
    }
    refused = eg("spaces", "update", "--space", "acme-crm")
    assert refused.exit_code == 2
    assert "--private" in refused.stderr


def test_each_space_command_uses_the_saved_key_of_its_space(fake, creds):
    creds.save(CONFIG, "acme-crm", {"apiKey": "egk_crm", "keyId": "a"})
    creds.save(CONFIG, "acme-users", {"apiKey": "egk_users", "keyId": "b"})
    fake.answer("GET", "/v1/spaces/acme-users", 200, {"name": "acme-users"})
    fake.answer("GET", "/v1/spaces/acme-crm/keys", 200, {"keys": []})

    ok("spaces", "get", "acme-users", "--space", "acme-crm")
    ok("keys", "ls", "--space", "acme-crm")
    ok("spaces", "get", "acme-users", "--api-key", "ego_operator_key_1234")

    authorizations = [request.headers.get("Authorization") for request in fake.requests]
    assert authorizations == ["Bearer egk_users", "Bearer egk_crm", "Bearer ego_operator_key_1234"]


@pytest.mark.parametrize(
    "command",
    [["spaces", "get"], ["spaces", "rm", "--yes"], ["spaces", "claim"]],
    ids=["get", "rm", "claim"],
)
@pytest.mark.parametrize("name", ["Bad Space!", "ab", "a/b"])
def test_a_space_name_argument_is_checked_like_space_before_any_request(fake, command, name):
    result = eg(*command, name)

    assert result.exit_code == 2, result.output
    assert f"{name!r} is not a valid space name: use 3 to 255 characters" in result.stderr
    assert fake.requests == []


def test_spaces_rm_asks_first_and_forgets_the_saved_key(fake, creds):
    creds.save(CONFIG, "acme-crm", {"apiKey": "egk_crm", "keyId": "a"})
    fake.answer("DELETE", "/v1/spaces/acme-crm", 204)

    declined = eg("spaces", "rm", "acme-crm", input="n\n")
    assert declined.exit_code == 1
    assert fake.requests == []

    removed = eg("spaces", "rm", "acme-crm", input="y\n")
    assert removed.exit_code == 0, removed.output
    assert "Removed space acme-crm." in removed.stdout
    assert f"Its key was removed from {creds.path}." in removed.stdout
    assert creds.get(CONFIG, "acme-crm") is None
    assert ok("spaces", "rm", "acme-crm", "--yes", "-o", "json").stdout == (
        '{"removed": "space", "id": "acme-crm"}\n'
    )


# -- eg keys -------------------------------------------------------------------------------------


def test_keys_create_prints_the_key_alone_on_stdout_with_a_warning(fake, creds):
    reply = {
        "keyId": "fedcba9876543210",
        "apiKey": "egk_new",
        "scopes": ["admin", "emit"],
        "expiresAt": None,
    }
    fake.answer("POST", "/v1/spaces/acme-crm/keys", 201, reply)

    result = ok("keys", "create", "--scope", "admin", "--scope", "emit", "--space", "acme-crm")

    assert result.stdout == "egk_new\n"
    assert (
        "Created key fedcba9876543210 of space acme-crm (scopes admin, emit; expires never)."
        in (result.stderr)
    )
    assert "only time the key is shown" in result.stderr
    assert json.loads(fake.sent("POST", "/v1/spaces/acme-crm/keys").content) == {
        "scopes": ["admin", "emit"]
    }
    assert not creds.path.exists()  # a created key is the caller's to keep


def test_keys_create_with_an_expiry_and_json(fake, creds):
    reply = {
        "keyId": "k",
        "apiKey": "egk_new",
        "scopes": ["emit"],
        "expiresAt": "2030-01-01T00:00:00Z",
    }
    fake.answer("POST", "/v1/spaces/acme-crm/keys", 201, reply)

    result = ok(
        "keys",
        "create",
        "--scope",
        "emit",
        "--expires",
        "2030-01-01T00:00:00Z",
        "--space",
        "acme-crm",
        "-o",
        "json",
    )

    assert json.loads(result.stdout) == reply
    assert json.loads(fake.sent("POST", "/v1/spaces/acme-crm/keys").content) == {
        "scopes": ["emit"],
        "expiresAt": "2030-01-01T00:00:00Z",
    }
    assert "only time the key is shown" in result.stderr
    unknown = eg("keys", "create", "--scope", "root")
    assert unknown.exit_code == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30d", "2026-12-26T18:00:00Z"),
        ("12h", "2026-11-27T06:00:00Z"),
        ("90m", "2026-11-26T19:30:00Z"),
        ("2w", "2026-12-10T18:00:00Z"),
        ("2027-01-31T00:00:00Z", "2027-01-31T00:00:00Z"),
        ("2027-01-31T02:00:00+02:00", "2027-01-31T00:00:00Z"),
    ],
)
def test_expiries_are_durations_or_rfc3339(raw, expected):
    now = datetime.datetime(2026, 11, 26, 18, 0, tzinfo=datetime.UTC)

    assert expires_at(raw, now) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("soon", "neither a duration"),
        ("2027-01-31T00:00:00", "no time zone"),
        ("2020-01-01T00:00:00Z", "already past"),
    ],
)
def test_bad_expiries_are_refused_before_any_request(fake, raw, message):
    result = eg("keys", "create", "--scope", "emit", "--expires", raw)

    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.requests == []


def test_keys_ls_shows_ids_scopes_and_times_never_secrets(fake, creds):
    fake.answer("GET", "/v1/spaces/acme-crm/keys", 200, {"keys": KEYS})

    table = ok("keys", "ls", "--space", "acme-crm").stdout
    listed = json.loads(ok("keys", "ls", "--space", "acme-crm", "-o", "json").stdout)

    rows = [line.split() for line in table.splitlines() if line.strip()]
    assert rows[0] == ["keyId", "scopes", "expiresAt", "createdAt"]
    assert rows[-2] == ["0123456789abcdef", "admin,emit,read", "2026-11-26T18:00:00Z"]
    assert rows[-1] == ["fedcba9876543210", "emit", "2026-12-26T18:00:00Z", "2026-11-26T18:05:00Z"]
    assert "egk_" not in table
    assert all("apiKey" not in item for item in listed)
    assert [item["keyId"] for item in listed] == [key["keyId"] for key in KEYS]


def test_keys_revoke_forgets_the_saved_key_when_it_is_the_one(fake, creds):
    creds.save(CONFIG, "acme-crm", {"apiKey": "egk_crm", "keyId": "0123456789abcdef"})
    fake.answer("DELETE", "/v1/spaces/acme-crm/keys/fedcba9876543210", 204)
    fake.answer("DELETE", "/v1/spaces/acme-crm/keys/0123456789abcdef", 204)

    other = ok("keys", "revoke", "fedcba9876543210", "--space", "acme-crm").stdout
    assert other == "Revoked key fedcba9876543210 of space acme-crm.\n"
    assert creds.get(CONFIG, "acme-crm") is not None

    saved = ok("keys", "revoke", "0123456789abcdef", "--space", "acme-crm").stdout
    assert saved == (
        "Revoked key 0123456789abcdef of space acme-crm.\n"
        f"It was the key saved in {creds.path}; removed it there.\n"
    )
    assert creds.get(CONFIG, "acme-crm") is None
