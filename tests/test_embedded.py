"""EmbeddedGateway: a real gateway on a background thread, started and stopped by its owner."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from eventgateway.embedded import EmbeddedGateway
from eventgateway.errors import ConfigError
from eventgateway.sdk.sync import EventGateway
from eventgateway.settings import Settings
from tests.support.receiver import Receiver


def settings_for(data_dir: pathlib.Path, **changes: object) -> Settings:
    base = Settings(
        events_port=0, config_port=0, data_dir=data_dir, dispatch="inline", shutdown_timeout_s=3
    )
    return base.replace(**changes)


@pytest.fixture
def settings(tmp_path: pathlib.Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield blocker.getsockname()[1]


def gateway_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("eventgateway-")]


def client_of(embedded: EmbeddedGateway) -> EventGateway:
    return EventGateway(embedded.events_url, config_url=embedded.config_url, space="acme")


@pytest.mark.parametrize("dispatch", ["inline", "process"])
async def test_an_emitted_event_reaches_an_http_function(
    tmp_path: pathlib.Path, receiver: Receiver, dispatch: str
):
    embedded = EmbeddedGateway(settings_for(tmp_path / "data", dispatch=dispatch))
    await asyncio.to_thread(embedded.start)

    def configure_and_emit() -> int:
        with client_of(embedded) as client:
            client.create_function("crm", "http", {"url": receiver.url("/crm")})
            client.create_event_type("user.created")
            client.subscribe("user.created", "crm", path="/acme/")
            return client.emit(event="user.created", data={"name": "Ada"}).status

    try:
        status = await asyncio.to_thread(configure_and_emit)
        [call] = await receiver.wait_for(1, "/crm")
    finally:
        await asyncio.to_thread(embedded.stop)

    assert status == 202
    assert (call.json()["type"], call.json()["data"]) == ("user.created", {"name": "Ada"})


def test_port_zero_binds_free_ports_and_exposes_their_urls(settings: Settings):
    with EmbeddedGateway(settings) as embedded:
        events_url, config_url = embedded.events_url, embedded.config_url
        status = httpx.get(config_url + "/v1/status", timeout=5)

    assert events_url.startswith("http://127.0.0.1:")
    assert config_url.startswith("http://127.0.0.1:")
    assert events_url != config_url
    assert not events_url.endswith(":0")
    assert status.status_code == 200


@pytest.mark.parametrize("port_field", ["events_port", "config_port"])
def test_a_taken_port_fails_start_with_the_message_serve_gives(
    settings: Settings, taken_port: int, port_field: str
):
    embedded = EmbeddedGateway(settings.replace(**{port_field: taken_port}))

    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{taken_port}: "):
        embedded.start()

    assert gateway_threads() == []
    embedded.stop()  # nothing to stop; must not raise


def test_a_failing_startup_raises_its_error_in_the_callers_thread(tmp_path: pathlib.Path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    embedded = EmbeddedGateway(settings_for(not_a_directory))

    with pytest.raises(ConfigError, match="is a file, not a directory"):
        embedded.start()

    assert not embedded.running
    assert gateway_threads() == []


def test_stop_is_idempotent_and_closes_the_listeners(settings: Settings):
    embedded = EmbeddedGateway(settings)
    embedded.stop()  # never started: nothing happens
    embedded.start()
    config_url = embedded.config_url

    embedded.stop()
    embedded.stop()

    assert not embedded.running
    assert gateway_threads() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(config_url + "/v1/status", timeout=5)


def test_a_second_gateway_on_the_same_data_dir_runs_after_the_first_stopped(settings: Settings):
    with EmbeddedGateway(settings) as first, client_of(first) as client:
        client.create_event_type("user.created")

    with EmbeddedGateway(settings) as second, client_of(second) as client:
        names = [event_type["name"] for event_type in client.list_event_types()]

    assert names == ["user.created"]


def test_an_instance_runs_once(settings: Settings):
    embedded = EmbeddedGateway(settings)
    with embedded, pytest.raises(RuntimeError, match="started before"):
        embedded.start()

    with pytest.raises(RuntimeError, match="started before"):
        embedded.start()


def test_urls_before_start_say_how_to_get_them(settings: Settings):
    embedded = EmbeddedGateway(settings)

    with pytest.raises(RuntimeError, match=r"call start\(\) first"):
        _ = embedded.events_url
    assert repr(embedded) == "EmbeddedGateway(not started)"


def test_no_signal_handler_is_installed(settings: Settings):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    with EmbeddedGateway(settings):
        during = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    assert during == before


def test_wildcard_host_gives_loopback_urls(settings: Settings):
    with EmbeddedGateway(settings.replace(host="0.0.0.0")) as embedded:
        status = httpx.get(embedded.config_url + "/v1/status", timeout=5)

    assert embedded.config_url.startswith("http://127.0.0.1:")
    assert status.status_code == 200
