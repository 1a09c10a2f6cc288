"""`eg` against an `eg serve --tls-cert` gateway whose CA is private.

QA: the certificate failure was reported as "cannot reach the gateway … start one with
`eg serve`" — but a gateway answered; what is missing is trust in its certificate.
`eg` trusts a private CA through SSL_CERT_FILE, which httpx reads for every client.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from tests.cli.kit import clean_workdir
from tests.support.process import GatewayProcess

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """cert.pem + key.pem for 127.0.0.1 (not for "localhost"), ca.pem of their CA."""
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    with (folder / "cert.pem").open("wb") as chain:
        for pem in cert.cert_chain_pems:
            chain.write(pem.bytes())
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return folder


@pytest.fixture(scope="module")
def https_gateway(
    tls_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("tls-cli") / "data",
        "--tls-cert",
        str(tls_dir / "cert.pem"),
        "--tls-key",
        str(tls_dir / "key.pem"),
    )
    process.scheme = "https"
    process.verify = False  # readiness only; what `eg` trusts is the test
    try:
        yield process.start()
    finally:
        if process.proc is not None:
            process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EG_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
    return clean_workdir(monkeypatch, tmp_path)


def claim(gateway: GatewayProcess, name: str, host: str = "127.0.0.1", **env: str) -> Result:
    urls = [f"https://{host}:{gateway.events_port}", f"https://{host}:{gateway.config_port}"]
    args = ["spaces", "claim", name, "--url", urls[0], "--config-url", urls[1]]
    return CliRunner().invoke(cli, args, env=env)


def test_an_untrusted_certificate_says_so_and_names_ssl_cert_file(https_gateway):
    done = claim(https_gateway, "qa-tls")

    assert done.exit_code == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"Error: the gateway at https://127.0.0.1:{https_gateway.config_port} answered, but "
        "its TLS certificate is not trusted (unable to get local issuer certificate): point "
        "SSL_CERT_FILE at the PEM file of the CA that signed it"
    )
    assert "eg serve" not in line


def test_ssl_cert_file_makes_eg_trust_the_private_ca(https_gateway, tls_dir):
    done = claim(https_gateway, "qa-tls-trusted", SSL_CERT_FILE=str(tls_dir / "ca.pem"))

    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("Claimed space qa-tls-trusted;")


def test_a_certificate_for_another_host_names_the_url_option(https_gateway, tls_dir):
    done = claim(
        https_gateway, "qa-tls-host", host="localhost", SSL_CERT_FILE=str(tls_dir / "ca.pem")
    )

    assert done.exit_code == 1
    assert done.stderr == (
        f"Error: the gateway at https://localhost:{https_gateway.config_port} answered, but "
        "its TLS certificate is not for that host (Hostname mismatch, certificate is not "
        "valid for 'localhost'.): point --config-url at a host name the certificate names\n"
    )


def test_plain_http_to_a_tls_port_says_to_use_https(https_gateway):
    urls = [f"http://127.0.0.1:{https_gateway.events_port}"]
    urls.append(f"http://127.0.0.1:{https_gateway.config_port}")
    args = ["spaces", "claim", "qa-plain", "--url", urls[0], "--config-url", urls[1]]

    done = CliRunner().invoke(cli, args)

    assert done.exit_code == 1
    [line] = done.stderr.splitlines()
    assert line.endswith("if it serves HTTPS (eg serve --tls-cert), use https:// in --config-url")
