"""server.py: TLS files checked before serving, and the bound on a request's head."""

from __future__ import annotations

import pathlib

import pytest

from eventgateway.errors import ConfigError
from eventgateway.server import HeadLimitedProtocol, check_tls, uvicorn_config
from eventgateway.settings import Limits, Settings, Tls

trustme = pytest.importorskip("trustme")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("pems")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.issue_cert("other").private_key_pem.write_to_path(str(folder / "other-key.pem"))
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (folder / "encrypted-key.pem").write_bytes(encrypted)
    (folder / "junk.pem").write_text("not a pem file\n")
    broken = cert.cert_chain_pems[0].bytes().replace(b"\n", b"\n!", 3)
    (folder / "broken-cert.pem").write_bytes(broken)
    return folder


def test_a_matching_pair_passes(pems: pathlib.Path) -> None:
    check_tls(Tls(pems / "cert.pem", pems / "key.pem"))


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("missing.pem", "key.pem", "cannot read TLS certificate '{d}/missing.pem': No such file"),
        ("cert.pem", "", "cannot read TLS key '{d}': Is a directory"),
        ("junk.pem", "key.pem", "TLS certificate '{d}/junk.pem' is not a PEM certificate"),
        ("cert.pem", "junk.pem", "TLS key '{d}/junk.pem' is not a PEM key"),
        ("key.pem", "cert.pem", "TLS certificate '{d}/key.pem' is not a PEM certificate"),
        ("cert.pem", "encrypted-key.pem", "TLS key '{d}/encrypted-key.pem' is encrypted"),
        (
            "cert.pem",
            "other-key.pem",
            "TLS key '{d}/other-key.pem' does not belong to certificate '{d}/cert.pem'",
        ),
        ("broken-cert.pem", "key.pem", "cannot use TLS certificate '{d}/broken-cert.pem'"),
    ],
)
def test_an_unusable_pair_is_a_config_error_naming_the_file(
    pems: pathlib.Path, cert: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_tls(Tls(pems / cert, pems / key))

    assert str(info.value).startswith(message.format(d=pems))


def test_uvicorn_serves_tls_only_when_settings_ask_for_it(pems: pathlib.Path) -> None:
    plain = uvicorn_config(object(), Settings())
    tls = uvicorn_config(object(), Settings(tls=Tls(pems / "cert.pem", pems / "key.pem")))

    assert not plain.is_ssl
    assert (tls.ssl_certfile, tls.ssl_keyfile) == (str(pems / "cert.pem"), str(pems / "key.pem"))


def test_the_head_bound_follows_the_header_limit() -> None:
    config = uvicorn_config(object(), Settings(limits=Limits(max_header_bytes=1000)))

    assert issubclass(config.http, HeadLimitedProtocol)  # type: ignore[arg-type]
    assert config.http.max_head_bytes == 2 * 1000 + 64 * 1024  # type: ignore[union-attr]
