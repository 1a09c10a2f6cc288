"""`eg serve` is a thin shim: it builds Settings from flags and EG_* variables and hands them on."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli, main
from eventgateway.errors import ConfigError
from eventgateway.settings import Durability, Limits, Settings

EG_VARIABLES = (
    "EG_HOST",
    "EG_EVENTS_PORT",
    "EG_CONFIG_PORT",
    "EG_DATA_DIR",
    "EG_STORE",
    "EG_DOMAIN",
    "EG_SHUTDOWN_TIMEOUT",
    "EG_LOG_LEVEL",
    "EG_LEASE_TIMEOUT",
    "EG_DEDUP_WINDOW",
    "EG_SYNCHRONOUS",
    "EG_DISPATCH",
    "EG_RETENTION_MAX_AGE",
    "EG_RETENTION_MAX_EVENTS",
    "EG_QUEUE_MAX_DELIVERIES",
    "EG_QUEUE_MAX_BYTES",
)


class Served:
    """Stands in for ``eventgateway.serving.serve`` and ``logging.basicConfig``; records calls."""

    def __init__(self) -> None:
        self.settings: list[Settings] = []
        self.logging: list[dict[str, Any]] = []
        self.raises: Exception | None = None

    def serve(self, settings: Settings) -> None:
        self.settings.append(settings)
        if self.raises is not None:
            raise self.raises

    def basic_config(self, **kwargs: Any) -> None:
        self.logging.append(kwargs)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Served:
    recorder = Served()
    monkeypatch.setattr("eventgateway.serving.serve", recorder.serve)
    monkeypatch.setattr("eventgateway.cli.main.logging.basicConfig", recorder.basic_config)
    for name in EG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return recorder


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["serve", *args], env=env)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_no_flags_serve_the_documented_defaults(served: Served):
    result = invoke()

    assert result.exit_code == 0, result.output
    assert served.settings == [
        Settings(
            host="127.0.0.1",
            events_port=4000,
            config_port=4001,
            data_dir=pathlib.Path(".eventgateway"),
            store_url=None,
            domain=None,
            shutdown_timeout_s=10.0,
            log_level="info",
            auth=True,
        )
    ]
    assert served.logging[0]["level"] == "INFO"


def test_flags_become_settings(served: Served, tmp_path: pathlib.Path):
    result = invoke(
        "--host",
        "0.0.0.0",
        "--events-port",
        "5000",
        "--config-port",
        "5001",
        "--data-dir",
        str(tmp_path / "data"),
        "--store",
        "memory://",
        "--domain",
        "example.com",
        "--shutdown-timeout",
        "2.5",
        "--log-level",
        "debug",
    )

    assert result.exit_code == 0, result.output
    assert served.settings == [
        Settings(
            host="0.0.0.0",
            events_port=5000,
            config_port=5001,
            data_dir=tmp_path / "data",
            store_url="memory://",
            domain="example.com",
            shutdown_timeout_s=2.5,
            log_level="debug",
            auth=True,
        )
    ]
    assert served.logging[0]["level"] == "DEBUG"


def test_eg_variables_become_settings(served: Served, tmp_path: pathlib.Path):
    env = {
        "EG_HOST": "127.0.0.2",
        "EG_EVENTS_PORT": "6000",
        "EG_CONFIG_PORT": "6001",
        "EG_DATA_DIR": str(tmp_path / "env-data"),
        "EG_STORE": f"sqlite:///{tmp_path / 'x.db'}",
        "EG_DOMAIN": "localhost",
        "EG_SHUTDOWN_TIMEOUT": "3",
        "EG_LOG_LEVEL": "warning",
    }

    result = invoke(env=env)

    assert result.exit_code == 0, result.output
    assert served.settings == [
        Settings(
            host="127.0.0.2",
            events_port=6000,
            config_port=6001,
            data_dir=tmp_path / "env-data",
            store_url=f"sqlite:///{tmp_path / 'x.db'}",
            domain="localhost",
            shutdown_timeout_s=3.0,
            log_level="warning",
            auth=True,
        )
    ]


def test_flags_win_over_eg_variables(served: Served):
    result = invoke("--events-port", "7000", env={"EG_EVENTS_PORT": "6000", "EG_HOST": "::1"})

    assert result.exit_code == 0, result.output
    [settings] = served.settings
    assert (settings.events_port, settings.host) == (7000, "::1")


def test_help_lists_every_option_without_serving(served: Served):
    result = invoke("--help")

    assert result.exit_code == 0
    assert "Run the gateway: Events API and Configuration API in one process." in result.output
    for option in (
        "--host",
        "--events-port",
        "--config-port",
        "--data-dir",
        "--store",
        "--domain",
        "--shutdown-timeout",
        "--log-level",
    ):
        assert option in result.output
    assert served.settings == []


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--events-port", "abc"], None, "'--events-port'"),
        (["--config-port", "4.5"], None, "'--config-port'"),
        (["--shutdown-timeout", "soon"], None, "'--shutdown-timeout'"),
        (["--log-level", "loud"], None, "'--log-level'"),
        ([], {"EG_EVENTS_PORT": "abc"}, "'--events-port'"),
        (["--unknown"], None, "--unknown"),
    ],
)
def test_unparsable_values_exit_2_with_one_error_line_naming_the_option(
    served: Served, args: list[str], env: dict[str, str] | None, named: str
):
    result = invoke(*args, env=env)

    assert result.exit_code == 2
    [line] = error_lines(result.output)
    assert named in line
    assert "Traceback" not in result.output
    assert served.settings == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--events-port", "70000"],
            "Error: events_port is 70000: a port must be between 0 and 65535",
        ),
        (
            ["--config-port", "-1"],
            "Error: config_port is -1: a port must be between 0 and 65535",
        ),
        (
            ["--domain", ".example.com"],
            "Error: domain '.example.com' is not a DNS name, e.g. 'example.com'",
        ),
    ],
)
def test_invalid_settings_exit_2_with_one_line_on_stderr(
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
):
    monkeypatch.setattr(sys, "argv", ["eg", "serve", *args])

    with pytest.raises(SystemExit) as caught:
        main()

    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n"
    assert captured.out == ""
    assert served.settings == []


def test_config_error_from_the_server_exits_2_with_one_line(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    served.raises = ConfigError("cannot listen on 127.0.0.1:4000: Address already in use")
    monkeypatch.setattr(sys, "argv", ["eg", "serve"])

    with pytest.raises(SystemExit) as caught:
        main()

    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "Error: cannot listen on 127.0.0.1:4000: Address already in use\n"
    )


def test_eg_entry_point_reports_click_usage_errors_with_exit_2(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(sys, "argv", ["eg", "serve", "--events-port", "abc"])

    with pytest.raises(SystemExit) as caught:
        main()

    assert caught.value.code == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "'--events-port'" in line
    assert "'abc'" in line


def test_delivery_flags_become_durability_and_limits(served: Served):
    result = invoke(
        "--lease-timeout",
        "2",
        "--dedup-window",
        "30",
        "--synchronous",
        "NORMAL",
        "--dispatch",
        "inline",
        "--retention-max-age",
        "3600",
        "--retention-max-events",
        "500",
        "--queue-max-deliveries",
        "10",
        env={"EG_QUEUE_MAX_BYTES": "2048"},
    )

    assert result.exit_code == 0, result.output
    [settings] = served.settings
    assert settings.dispatch == "inline"
    assert settings.durability == Durability(
        synchronous="NORMAL",
        dedup_window_s=30.0,
        lease_s=2.0,
        retention_max_age_s=3600.0,
        retention_max_events=500,
    )
    assert settings.limits == Limits(queue_max_deliveries=10, queue_max_bytes=2048)


def test_zero_queue_bound_is_refused_naming_the_flag(served: Served):
    result = invoke("--queue-max-deliveries", "0")

    assert result.exit_code == 2
    assert "--queue-max-deliveries" in result.output
    assert served.settings == []
