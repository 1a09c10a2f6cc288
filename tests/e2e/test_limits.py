"""Request limits over real sockets: `eg serve` with the limit flags, both listeners."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("limits") / "data",
        "--max-header-bytes",
        "8192",
        "--max-body-bytes",
        "4096",
        "--max-json-depth",
        "8",
        "--max-batch-events",
        "2",
        "--events-read-timeout",
        "1.5",
        "--config-read-timeout",
        "1.5",
    )
    try:
        yield process.start()
    finally:
        if process.proc is not None:
            process.stop()


def url(gateway: GatewayProcess, api: str, path: str) -> str:
    return (gateway.events_url if api == "events" else gateway.config_url) + path


@pytest.mark.parametrize("api", ["events", "config"])
def test_a_60_kb_header_is_a_431_on_both_ports(gateway: GatewayProcess, api: str):
    response = httpx.get(url(gateway, api, "/v1/status"), headers={"x-big": "a" * 60_000})

    assert response.status_code == 431
    assert response.json()["errors"][0]["message"].endswith("the limit is 8192 bytes.")


@pytest.mark.parametrize("api", ["events", "config"])
def test_an_endless_header_is_refused_before_it_ends(gateway: GatewayProcess, api: str):
    port = gateway.events_port if api == "events" else gateway.config_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:  # never ends the header: only a bound on the unparsed head can answer
            for _ in range(40):
                sock.sendall(b"a" * 10_000)
        except OSError:
            pass  # the gateway may have closed the connection already
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 431 ")
    # 2 × --max-header-bytes + 64 KiB for the request line and framing
    assert answer.endswith(
        b'{"errors":[{"message":"Request line and headers are over the limit of 81920 bytes."}]}\n'
    )


@pytest.mark.parametrize("api", ["events", "config"])
def test_a_body_over_the_flag_is_a_413_on_both_ports(gateway: GatewayProcess, api: str):
    response = httpx.post(url(gateway, api, "/v1/spaces/acme/eventtypes"), content=b" " * 5000)

    assert response.status_code == 413
    assert response.json() == {
        "errors": [{"message": "Request body is over the limit of 4096 bytes."}]
    }


@pytest.mark.parametrize("api", ["events", "config"])
def test_json_deeper_than_the_flag_is_a_400_on_both_ports(gateway: GatewayProcess, api: str):
    response = httpx.post(
        url(gateway, api, "/v1/spaces/acme/eventtypes"),
        content=b"[" * 9 + b"]" * 9,
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        "JSON body is nested too deeply: the limit is 8 levels of arrays and objects"
    )


def test_a_batch_over_the_flag_is_a_413(gateway: GatewayProcess):
    event = '{"specversion":"1.0","id":"1","source":"/s","type":"t"}'

    response = httpx.post(
        gateway.events_url + "/acme/",
        content=f"[{event},{event},{event}]",
        headers={"content-type": "application/cloudevents-batch+json"},
    )

    assert response.status_code == 413
    assert "the limit is 2 events per request" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("api", ["events", "config"])
def test_a_head_that_stops_halfway_is_a_408_after_the_read_timeout(
    gateway: GatewayProcess, api: str
):
    port = gateway.events_port if api == "events" else gateway.config_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        answer = b""
        while chunk := sock.recv(4096):  # the gateway closes after its answer
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(
        b'{"errors":[{"message":"The request did not arrive in full within 1.5 s '
        b'(the read timeout)."}]}\n'
    )
