"""`eg serve --tls-cert --tls-key`: HTTPS on both listeners, with a CA made by the test."""

from __future__ import annotations

import os
import pathlib
import ssl
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from eventgateway import EventGateway
from tests.support.ports import free_port
from tests.support.process import GatewayProcess

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_dir(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """cert.pem + key.pem for 127.0.0.1, ca.pem, and other-key.pem of another certificate."""
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    with (folder / "cert.pem").open("wb") as chain:
        for pem in cert.cert_chain_pems:
            chain.write(pem.bytes())
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    ca.issue_cert("other.example").private_key_pem.write_to_path(str(folder / "other-key.pem"))
    return folder


@pytest.fixture(scope="module")
def https_gateway(
    tls_dir: pathlib.Path, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("tls-serve") / "data",
        "--tls-cert",
        str(tls_dir / "cert.pem"),
        "--tls-key",
        str(tls_dir / "key.pem"),
    )
    process.scheme = "https"
    process.verify = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    try:
        yield process.start()
    finally:
        if process.proc is not None:
            process.stop()


def test_the_sdk_configures_and_emits_over_https_trusting_the_ca(
    https_gateway: GatewayProcess, tls_dir: pathlib.Path
):
    with EventGateway(
        https_gateway.events_url,
        config_url=https_gateway.config_url,
        space="acme",
        verify=tls_dir / "ca.pem",
        retries=0,
    ) as gateway:
        created = gateway.create_event_type("user.created")
        result = gateway.emit(event="user.created", data={"name": "Ada"})
        listed = gateway.list_event_types()

    assert created["name"] == "user.created"
    assert result.status == 202
    assert [event_type["name"] for event_type in listed] == ["user.created"]


@pytest.mark.parametrize("port", ["events_port", "config_port"])
def test_plain_http_is_refused_on_both_listeners(https_gateway: GatewayProcess, port: str):
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{getattr(https_gateway, port)}/v1/status", timeout=5)


def test_an_untrusted_certificate_is_refused_by_the_client(https_gateway: GatewayProcess):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_gateway.config_url + "/v1/status", timeout=5)


def serve(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eventgateway",
            "serve",
            "--no-auth",
            "--events-port",
            str(free_port()),
            "--config-port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
        capture_output=True,
        timeout=30,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        (
            "missing.pem",
            "key.pem",
            "Error: cannot read TLS certificate '{dir}/missing.pem': No such file or directory",
        ),
        (
            "cert.pem",
            "other-key.pem",
            "Error: TLS key '{dir}/other-key.pem' does not belong to certificate '{dir}/cert.pem'",
        ),
    ],
)
def test_an_unusable_certificate_or_key_exits_2_with_one_line(
    tmp_path: pathlib.Path, tls_dir: pathlib.Path, cert: str, key: str, message: str
):
    result = serve(tmp_path, "--tls-cert", str(tls_dir / cert), "--tls-key", str(tls_dir / key))

    assert result.returncode == 2
    assert result.stderr.decode() == message.format(dir=tls_dir) + "\n"
