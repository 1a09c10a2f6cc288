"""`eg serve --nats-prefix`: the same prefix as the nats:// store URL's ``?prefix=``.

The flag is folded into the store URL, so the config store, queue, logs and bundles all
read it from one place; a real `eg serve` with it is in tests/e2e/test_cluster.py.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli, main
from eventgateway.cluster import parse_nats_url
from eventgateway.settings import Settings


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> list[Settings]:
    """What `eg serve` hands to ``eventgateway.serving.serve`` (which does not run)."""
    calls: list[Settings] = []
    monkeypatch.setattr("eventgateway.serving.serve", calls.append)
    monkeypatch.setattr("eventgateway.cli.main.logging.basicConfig", lambda **kwargs: None)
    for name in ("EG_NATS_PREFIX", "EG_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["serve", "--no-auth", *args], env=env)


def fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `eg serve ARGS` as the console script does; its one error line (exit 2)."""
    monkeypatch.setattr(sys, "argv", ["eg", "serve", "--no-auth", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("nats://a:4222", "nats://a:4222?prefix=blue"),
        (
            "nats://a:4222,nats://b:4222?replicas=3",
            "nats://a:4222,nats://b:4222?replicas=3&prefix=blue",
        ),
        ("nats://a:4222?prefix=blue", "nats://a:4222?prefix=blue"),  # the same twice is fine
    ],
)
def test_the_flag_becomes_the_store_urls_prefix(served: list[Settings], store: str, expected: str):
    result = invoke("--store", store, "--nats-prefix", "blue")

    assert result.exit_code == 0, result.output
    [settings] = served
    assert settings.store_url == expected
    assert parse_nats_url(expected).prefix == "blue"


def test_the_variable_sets_it_too(served: list[Settings]):
    result = invoke(env={"EG_STORE": "nats://a:4222", "EG_NATS_PREFIX": "green_2"})

    assert result.exit_code == 0, result.output
    assert parse_nats_url(served[0].resolved_store_url).prefix == "green_2"


def test_without_the_flag_the_url_is_left_alone(served: list[Settings]):
    assert invoke("--store", "nats://a:4222").exit_code == 0

    assert served[0].store_url == "nats://a:4222"


def test_a_url_prefix_that_differs_from_the_flag_exits_2(
    served: list[Settings], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    err = fails(
        monkeypatch, capsys, "--store", "nats://a:4222?prefix=green", "--nats-prefix", "blue"
    )

    assert err == (
        "Error: --nats-prefix 'blue' and the --store URL's prefix='green' differ: "
        "give the prefix once\n"
    )
    assert served == []


@pytest.mark.parametrize("prefix", ["", "a.b", "a b", "a>", "x" * 65, "ünï"])
def test_an_invalid_prefix_exits_2_naming_the_flag(
    served: list[Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prefix: str,
):
    err = fails(monkeypatch, capsys, "--store", "nats://a:4222", "--nats-prefix", prefix)

    assert err.startswith(f"Error: --nats-prefix {prefix!r} is not valid: use 1 to 64 letters")
    assert served == []


@pytest.mark.parametrize(
    ("store", "shown"),
    [((), "the default SQLite store"), (("--store", "memory://"), "'memory://'")],
)
def test_the_flag_without_a_nats_store_exits_2(
    served: list[Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    store: tuple[str, ...],
    shown: str,
):
    err = fails(monkeypatch, capsys, *store, "--nats-prefix", "blue")

    assert (
        err
        == f"Error: --nats-prefix needs a nats:// store, not {shown}: use --store nats://HOST:4222\n"
    )
    assert served == []
