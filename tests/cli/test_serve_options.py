"""`eg serve`'s request limit and TLS flags become Settings; bad values are one error line."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli, main
from eventgateway.settings import Limits, Settings, Tls

VARIABLES = (
    "EG_MAX_BODY_BYTES",
    "EG_MAX_HEADER_BYTES",
    "EG_MAX_JSON_DEPTH",
    "EG_MAX_BATCH_EVENTS",
    "EG_EVENTS_READ_TIMEOUT",
    "EG_CONFIG_READ_TIMEOUT",
    "EG_DISPATCH_CONCURRENCY",
    "EG_PER_SUBSCRIPTION_CONCURRENCY",
    "EG_TLS_CERT",
    "EG_TLS_KEY",
)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> list[Settings]:
    """What `eg serve` hands to ``eventgateway.serving.serve`` (which does not run)."""
    calls: list[Settings] = []
    monkeypatch.setattr("eventgateway.serving.serve", calls.append)
    monkeypatch.setattr("eventgateway.cli.main.logging.basicConfig", lambda **kwargs: None)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["serve", "--no-auth", *args], env=env)


def test_defaults_are_the_documented_limits_and_plain_http(served: list[Settings]):
    assert invoke().exit_code == 0

    [settings] = served
    limits = settings.limits
    assert (limits.max_body_bytes, limits.max_header_bytes) == (6 * 1024 * 1024, 64 * 1024)
    assert (limits.max_json_depth, limits.max_batch_events) == (64, 1000)
    assert settings.tls is None


def test_limit_flags_become_limits(served: list[Settings]):
    result = invoke(
        "--max-body-bytes", "1000", "--max-header-bytes", "2000",
        "--max-json-depth", "5", "--max-batch-events", "7",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    limits = served[0].limits
    assert (limits.max_body_bytes, limits.max_header_bytes) == (1000, 2000)
    assert (limits.max_json_depth, limits.max_batch_events) == (5, 7)
    assert limits.queue_max_deliveries == Limits().queue_max_deliveries  # others untouched


def test_dispatch_flags_and_variables_bound_deliveries_in_flight(served: list[Settings]):
    assert (
        invoke("--dispatch-concurrency", "64", "--per-subscription-concurrency", "8").exit_code == 0
    )
    env = {"EG_DISPATCH_CONCURRENCY": "65", "EG_PER_SUBSCRIPTION_CONCURRENCY": "9"}
    assert invoke(env=env).exit_code == 0
    assert invoke().exit_code == 0

    flags, variables, defaults = (settings.limits for settings in served)
    assert (flags.dispatch_concurrency, flags.per_subscription_concurrency) == (64, 8)
    assert (variables.dispatch_concurrency, variables.per_subscription_concurrency) == (65, 9)
    assert (defaults.dispatch_concurrency, defaults.per_subscription_concurrency) == (1024, 128)
    result = invoke("--per-subscription-concurrency", "0")
    assert result.exit_code == 2
    assert "'--per-subscription-concurrency'" in result.output


def test_read_timeout_flags_and_variables_become_limits(served: list[Settings]):
    assert invoke("--events-read-timeout", "0.5", "--config-read-timeout", "30").exit_code == 0
    env = {"EG_EVENTS_READ_TIMEOUT": "61", "EG_CONFIG_READ_TIMEOUT": "900"}
    assert invoke(env=env).exit_code == 0
    assert invoke().exit_code == 0

    flags, variables, defaults = (settings.limits for settings in served)
    assert (flags.events_read_timeout_s, flags.config_read_timeout_s) == (0.5, 30.0)
    assert (variables.events_read_timeout_s, variables.config_read_timeout_s) == (61.0, 900.0)
    assert (defaults.events_read_timeout_s, defaults.config_read_timeout_s) == (60.0, 600.0)


def test_limit_and_tls_variables_become_settings(served: list[Settings]):
    env = {
        "EG_MAX_BODY_BYTES": "1001",
        "EG_MAX_HEADER_BYTES": "2001",
        "EG_MAX_JSON_DEPTH": "6",
        "EG_MAX_BATCH_EVENTS": "8",
        "EG_TLS_CERT": "c.pem",
        "EG_TLS_KEY": "k.pem",
    }

    assert invoke(env=env).exit_code == 0

    [settings] = served
    limits = settings.limits
    assert (limits.max_body_bytes, limits.max_header_bytes) == (1001, 2001)
    assert (limits.max_json_depth, limits.max_batch_events) == (6, 8)
    assert settings.tls == Tls(pathlib.Path("c.pem"), pathlib.Path("k.pem"))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--max-body-bytes", "0"], "'--max-body-bytes'"),
        (["--max-header-bytes", "big"], "'--max-header-bytes'"),
        (["--max-json-depth", "501"], "'--max-json-depth'"),
        (["--max-batch-events", "-1"], "'--max-batch-events'"),
        (["--events-read-timeout", "0"], "'--events-read-timeout'"),
        (["--config-read-timeout", "soon"], "'--config-read-timeout'"),
    ],
)
def test_bad_limits_exit_2_naming_the_flag(served: list[Settings], args: list[str], named: str):
    result = invoke(*args)

    assert result.exit_code == 2
    assert named in result.output
    assert served == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "c.pem"], "Error: --tls-cert needs --tls-key too"),
        (["--tls-key", "k.pem"], "Error: --tls-key needs --tls-cert too"),
    ],
)
def test_half_a_tls_pair_exits_2_with_one_line(
    served: list[Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
):
    monkeypatch.setattr(sys, "argv", ["eg", "serve", "--no-auth", *args])

    with pytest.raises(SystemExit) as caught:
        main()

    assert caught.value.code == 2
    assert capsys.readouterr().err == message + ": HTTPS takes a certificate and its key\n"
    assert served == []
