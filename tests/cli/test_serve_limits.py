"""`eg serve`'s rate-limit and per-space count flags become Limits."""

from __future__ import annotations

import pathlib

import pytest
from click.testing import CliRunner

from eventgateway.auth.ratelimit import RateLimit
from eventgateway.cli.main import cli
from eventgateway.settings import Limits, Settings

VARIABLES = (
    "EG_RATE_LIMIT_SPACE",
    "EG_RATE_LIMIT_KEY",
    "EG_MAX_FUNCTIONS_PER_SPACE",
    "EG_MAX_SUBSCRIPTIONS_PER_SPACE",
    "EG_MAX_EVENT_TYPES_PER_SPACE",
    "EG_MAX_CORS_PER_SPACE",
)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> list[Settings]:
    calls: list[Settings] = []
    monkeypatch.setattr("eventgateway.serving.serve", calls.append)
    monkeypatch.setattr("eventgateway.cli.main.logging.basicConfig", lambda **_: None)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


def serve(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["serve", *args], env=env)


def test_without_flags_rate_limits_follow_the_mode_and_counts_have_defaults(served):
    assert serve().exit_code == 0
    [settings] = served

    assert settings.limits == Limits()
    assert settings.limits.rate_limit_space is None
    assert settings.limits.max_subscriptions_per_space == 5_000


def test_limit_flags_and_variables_become_limits(served):
    result = serve(
        "--rate-limit-space",
        "50/80",
        "--rate-limit-key",
        "0",
        "--max-functions-per-space",
        "10",
        "--max-subscriptions-per-space",
        "20",
        "--max-event-types-per-space",
        "0",
        env={"EG_MAX_CORS_PER_SPACE": "7", "EG_MAX_KEYS_PER_SPACE": "9"},
    )

    assert result.exit_code == 0, result.output
    [settings] = served
    assert settings.limits == Limits(
        rate_limit_space=RateLimit(50.0, 80),
        rate_limit_key=RateLimit.UNLIMITED,
        max_functions_per_space=10,
        max_subscriptions_per_space=20,
        max_event_types_per_space=0,
        max_cors_per_space=7,
        max_keys_per_space=9,
    )


def test_rate_limit_variable_is_read(served):
    assert serve(env={"EG_RATE_LIMIT_KEY": "5"}).exit_code == 0

    assert served[0].limits.rate_limit_key == RateLimit(5.0, 10)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--rate-limit-space", "fast"], "'--rate-limit-space'"),
        (["--rate-limit-key", "10/0"], "'--rate-limit-key'"),
        (["--max-functions-per-space", "-1"], "'--max-functions-per-space'"),
    ],
)
def test_bad_limits_exit_2_naming_the_flag(served, args, named):
    result = serve(*args)

    assert result.exit_code == 2
    assert named in result.output
    assert served == []
