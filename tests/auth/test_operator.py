"""The bootstrap operator key: EG_OPERATOR_KEY, else <data-dir>/operator.key (0600), shown once."""

from __future__ import annotations

import logging
import pathlib
import stat

import pytest

from eventgateway.auth.operator import OPERATOR_KEY_FILE, load_operator_key, operator_key_for
from eventgateway.errors import ConfigError
from eventgateway.settings import Settings


class Printed:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


def test_the_first_start_creates_a_0600_file_and_shows_the_key_once(tmp_path: pathlib.Path):
    printed = Printed()

    first = load_operator_key(tmp_path, announce=printed)
    again = load_operator_key(tmp_path, announce=printed)

    path = tmp_path / OPERATOR_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first == again
    assert len(printed.lines) == 1
    assert first in printed.lines[0]
    assert str(path) in printed.lines[0]


def test_by_default_the_key_goes_to_stderr_and_never_into_the_log(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)

    key = load_operator_key(tmp_path)
    load_operator_key(tmp_path)

    captured = capsys.readouterr()
    assert captured.err.count(key) == 1
    assert key not in captured.out
    assert key not in caplog.text
    assert "operator.key" in caplog.text


def test_an_configured_key_is_used_and_nothing_is_written_or_shown(tmp_path: pathlib.Path):
    printed = Printed()

    key = load_operator_key(tmp_path, configured="k" * 20, announce=printed)

    assert key == "k" * 20
    assert printed.lines == []
    assert not (tmp_path / OPERATOR_KEY_FILE).exists()


def test_a_memory_gateway_makes_a_key_per_process_and_shows_it():
    printed = Printed()

    first = load_operator_key(None, announce=printed)
    second = load_operator_key(None, announce=printed)

    assert first != second
    assert len(printed.lines) == 2


def test_a_short_configured_key_is_refused_when_settings_are_built():
    with pytest.raises(ConfigError, match="EG_OPERATOR_KEY has 5 characters"):
        Settings(auth=True, operator_key="short")


def test_a_file_readable_by_others_is_used_with_a_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / OPERATOR_KEY_FILE
    path.write_text("ego_" + "a" * 48 + "\n")
    path.chmod(0o644)

    key = load_operator_key(tmp_path, announce=Printed())

    assert key == "ego_" + "a" * 48
    assert "chmod 600" in caplog.text
    assert key not in caplog.text


def test_an_empty_key_file_is_an_error_naming_it(tmp_path: pathlib.Path):
    (tmp_path / OPERATOR_KEY_FILE).write_text("\n")

    with pytest.raises(ConfigError, match="holds no usable key"):
        load_operator_key(tmp_path, announce=Printed())


def test_without_auth_mode_there_is_no_operator_key(tmp_path: pathlib.Path):
    assert operator_key_for(Settings(data_dir=tmp_path)) is None
    assert not (tmp_path / OPERATOR_KEY_FILE).exists()


def test_settings_never_show_the_operator_key():
    settings = Settings(auth=True, operator_key="s" * 30)

    assert "s" * 30 not in repr(settings)
