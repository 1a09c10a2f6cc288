"""Settings validation, the default store URL, and the store a URL opens (``app.open_store``)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from eventgateway.errors import ConfigError
from eventgateway.settings import Limits, Settings, default_data_dir


@pytest.fixture
def open_store() -> Callable[[str], Any]:
    # Imported here so that only these tests depend on the whole composition root.
    from eventgateway.app import open_store

    return open_store


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["events_port", "config_port"])
@pytest.mark.parametrize("port", [-1, 65536, 100_000])
def test_port_outside_0_to_65535_is_a_config_error_naming_field_and_value(field: str, port: int):
    changes: dict[str, Any] = {field: port}

    with pytest.raises(ConfigError) as caught:
        Settings(**changes)

    assert str(caught.value) == f"{field} is {port}: a port must be between 0 and 65535"


@pytest.mark.parametrize("port", [0, 1, 4000, 65535])
def test_ports_from_0_to_65535_are_accepted(port: int):
    settings = Settings(events_port=port, config_port=port)

    assert (settings.events_port, settings.config_port) == (port, port)


@pytest.mark.parametrize("domain", ["", ".example.com"])
def test_domain_that_is_not_a_dns_name_is_a_config_error_quoting_it(domain: str):
    with pytest.raises(ConfigError) as caught:
        Settings(domain=domain)

    assert str(caught.value) == f"domain {domain!r} is not a DNS name, e.g. 'example.com'"


@pytest.mark.parametrize("domain", ["http://example.com", "example.com/x", "exa mple.com"])
def test_domain_with_a_scheme_path_or_space_is_a_config_error(domain: str):
    with pytest.raises(ConfigError, match=f"domain {domain!r}"):
        Settings(domain=domain)


@pytest.mark.parametrize("domain", ["example.com", "localhost", "gw.internal.example.com"])
def test_dns_names_are_accepted_as_domain(domain: str):
    assert Settings(domain=domain).domain == domain


def test_replace_validates_the_copy():
    settings = Settings(events_port=5000)

    with pytest.raises(ConfigError, match="config_port is 70000"):
        settings.replace(config_port=70000)


def test_replace_returns_a_changed_copy():
    settings = Settings(events_port=5000)

    changed = settings.replace(config_port=5001)

    assert (changed.events_port, changed.config_port) == (5000, 5001)
    assert settings.config_port == 4001


def test_settings_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().events_port = 1  # type: ignore[misc]


def test_defaults_match_the_documented_serve_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EG_DATA_DIR", raising=False)

    settings = Settings()

    assert settings == Settings(
        host="127.0.0.1",
        events_port=4000,
        config_port=4001,
        data_dir=pathlib.Path(".eventgateway"),
        store_url=None,
        domain=None,
        shutdown_timeout_s=10.0,
        limits=Limits(),
        log_level="info",
    )
    assert settings.limits.function_timeout_s == 5.0
    limits = settings.limits
    assert (limits.events_read_timeout_s, limits.config_read_timeout_s) == (60.0, 600.0)


def test_data_dir_defaults_to_eg_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path):
    monkeypatch.setenv("EG_DATA_DIR", str(tmp_path / "gw"))

    assert default_data_dir() == tmp_path / "gw"
    assert Settings().data_dir == tmp_path / "gw"


# -- resolved_store_url ----------------------------------------------------------------------


def test_explicit_store_url_is_used_as_is(tmp_path: pathlib.Path):
    settings = Settings(data_dir=tmp_path, store_url="memory://")

    assert settings.resolved_store_url == "memory://"


def test_default_store_is_sqlite_file_in_the_data_dir(tmp_path: pathlib.Path):
    settings = Settings(data_dir=tmp_path / "data")

    assert settings.resolved_store_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'gateway.db'}"


def test_relative_data_dir_is_resolved_against_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
):
    monkeypatch.chdir(tmp_path)

    settings = Settings(data_dir=pathlib.Path("rel"))

    assert settings.resolved_store_url == f"sqlite:///{tmp_path.resolve() / 'rel' / 'gateway.db'}"


# -- app.open_store --------------------------------------------------------------------------


async def test_default_store_url_opens_a_sqlite_file_in_the_data_dir(
    open_store: Callable[[str], Any], tmp_path: pathlib.Path
):
    from eventgateway.store.sqlite import SqliteStore

    store = open_store(Settings(data_dir=tmp_path).resolved_store_url)
    await store.open()
    try:
        await store.create("functions", "acme", "crm", b"{}")
    finally:
        await store.close()

    assert isinstance(store, SqliteStore)
    assert (tmp_path / "gateway.db").is_file()
    assert not str(store.path).startswith("//")  # it showed in messages


def test_sqlite_url_names_the_file(open_store: Callable[[str], Any], tmp_path: pathlib.Path):
    from eventgateway.store.sqlite import SqliteStore

    store = open_store(f"sqlite://{tmp_path / 'config.db'}")

    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "config.db"


def test_memory_url_opens_a_memory_store(open_store: Callable[[str], Any]):
    from eventgateway.store.memory import MemoryStore

    assert isinstance(open_store("memory://"), MemoryStore)


def test_nats_url_opens_a_nats_store_with_every_server_and_the_prefix(
    open_store: Callable[[str], Any],
):
    from eventgateway.store.nats import NatsStore

    store = open_store("nats://a:4222,nats://b:4223?prefix=blue")

    assert isinstance(store, NatsStore)
    assert store.servers == ["nats://a:4222", "nats://b:4223"]
    assert (store.prefix, store.bucket) == ("blue", "blue-config")


def test_nats_url_replicas_reach_the_config_store_and_default_to_one(
    open_store: Callable[[str], Any],
):
    from eventgateway.cluster import parse_nats_url

    assert parse_nats_url("nats://a:4222,nats://b:4222?prefix=x&replicas=3").replicas == 3
    assert parse_nats_url("nats://a:4222").replicas == 1
    assert open_store("nats://a:4222?replicas=3")._replicas == 3


def test_nats_url_max_in_flight_reaches_the_delivery_queue_and_defaults_to_its_bound() -> None:
    from eventgateway.cluster import jetstream_queue, parse_nats_url
    from eventgateway.queue.jetstream import DEFAULT_MAX_IN_FLIGHT_ORDERED

    limits = {"max_bytes": 10_000, "dedup_window_s": 1.0, "lease_s": 5.0}
    assert parse_nats_url("nats://a:4222?max_in_flight=250000").max_in_flight == 250_000
    assert parse_nats_url("nats://a:4222").max_in_flight is None
    tuned = jetstream_queue("nats://a:4222?max_in_flight=5000", max_deliveries=70_000, **limits)
    assert (tuned._max_in_flight, tuned._max_in_flight_ordered) == (
        5_000,
        DEFAULT_MAX_IN_FLIGHT_ORDERED,
    )
    # Unset, the consumer's bound is the stream's: it never binds first.
    assert jetstream_queue("nats://a:4222", max_deliveries=70_000, **limits)._max_in_flight == (
        70_000
    )


def test_nats_url_without_prefix_uses_the_default_prefix(open_store: Callable[[str], Any]):
    assert open_store("nats://127.0.0.1:4222").bucket == "eventgateway-config"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("nats://", "'nats://' is not a NATS URL"),
        ("nats://a:4222,http://b:80", "'http://b:80' is not a NATS URL"),
        ("nats://a:99999", "'nats://a:99999' is not a NATS URL (Port out of range"),
        ("nats://a:4222?prefx=x", "unknown option 'prefx'"),
        ("nats://a:4222?prefix=a.b", "prefix 'a.b': use 1 to 64 of A-Z"),
        ("nats://a:4222?replicas=0", "replicas='0' must be a whole number from 1 to 5"),
        ("nats://a:4222?replicas=6", "replicas='6' must be a whole number from 1 to 5"),
        ("nats://a:4222?replicas=three", "replicas='three' must be a whole number from 1 to 5"),
        ("nats://a:4222?replicas=1&replicas=3", "option 'replicas' is given more than once"),
        (
            "nats://a:4222?max_in_flight=5&max_in_flight=6",
            "option 'max_in_flight' is given more than once",
        ),
        (
            "nats://a:4222?max_in_flight=0",
            "max_in_flight='0' must be a whole number from 1 to 10,000,000",
        ),
        (
            "nats://a:4222?max_in_flight=1e6",
            "max_in_flight='1e6' must be a whole number from 1 to 10,000,000",
        ),
    ],
)
def test_bad_nats_url_is_a_config_error_quoting_it(
    open_store: Callable[[str], Any], url: str, complaint: str
):
    with pytest.raises(ConfigError) as caught:
        open_store(url)

    assert str(caught.value).startswith(f"store {url!r}: {complaint}")


@pytest.mark.parametrize(
    "url", ["postgres://db/gw", "gateway.db", "", "memory://other", "SQLITE:///x.db"]
)
def test_unknown_store_url_is_a_config_error_quoting_it(open_store: Callable[[str], Any], url: str):
    with pytest.raises(ConfigError) as caught:
        open_store(url)

    assert str(caught.value) == (
        f"store {url!r} is not a known store URL; use sqlite:///PATH, memory:// or nats://HOST:PORT"
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(max_body_bytes=0), "max_body_bytes is 0: it must be at least 1"),
        (Limits(max_header_bytes=-1), "max_header_bytes is -1: it must be at least 1"),
        (Limits(max_json_depth=0), "max_json_depth is 0: it must be at least 1"),
        (Limits(max_batch_events=0), "max_batch_events is 0: it must be at least 1"),
        (
            Limits(events_read_timeout_s=0.0),
            "events_read_timeout_s is 0.0: it must be more than 0 seconds",
        ),
        (
            Limits(config_read_timeout_s=float("nan")),
            "config_read_timeout_s is nan: it must be more than 0 seconds",
        ),
        (
            Limits(max_json_depth=501),
            "max_json_depth is 501: it must be at most 500, below what the JSON decoders can nest",
        ),
    ],
)
def test_request_limits_are_checked(limits: Limits, message: str):
    with pytest.raises(ConfigError) as caught:
        Settings(limits=limits)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("auth", "setting", "allowed"),
    [
        (True, None, False),  # auth mode: tenants must not act with the gateway's role
        (False, None, True),  # one user (eg dev, --no-auth, the test kit): as the original
        (True, True, True),
        (False, False, False),
    ],
)
def test_aws_default_credentials_follow_the_auth_mode_unless_set(
    auth: bool, setting: bool | None, allowed: bool
):
    settings = Settings(auth=auth, aws_default_credentials=setting)

    assert settings.aws_default_credentials_allowed is allowed


def test_aws_default_credentials_must_be_a_bool_or_none():
    with pytest.raises(ConfigError, match="aws_default_credentials is 'yes': use True"):
        Settings(aws_default_credentials="yes")  # type: ignore[arg-type]
