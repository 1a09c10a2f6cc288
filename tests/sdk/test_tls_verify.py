"""The SDK's ``verify=``: how an https:// gateway's certificate is checked."""

from __future__ import annotations

import pathlib
import ssl

import pytest

from eventgateway import AsyncEventGateway, EventGateway
from eventgateway.sdk._http import tls_verify

trustme = pytest.importorskip("trustme")


@pytest.fixture
def ca_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize("as_text", [True, False])
def test_a_ca_bundle_path_becomes_a_context_trusting_only_it(ca_file: pathlib.Path, as_text: bool):
    context = tls_verify(str(ca_file) if as_text else ca_file)

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1


def test_booleans_and_contexts_pass_through():
    context = ssl.create_default_context()

    assert tls_verify(True) is True
    assert tls_verify(False) is False
    assert tls_verify(context) is context


def test_a_missing_ca_bundle_fails_when_the_client_is_made(tmp_path: pathlib.Path):
    with pytest.raises(FileNotFoundError):
        EventGateway("https://gw.example", verify=tmp_path / "missing.pem")


async def test_both_clients_take_https_urls_and_verify(ca_file: pathlib.Path):
    with EventGateway("https://gw.example:4000", verify=ca_file) as gateway:
        assert "https://gw.example:4001" in repr(gateway)
    async with AsyncEventGateway("https://gw.example:4000", verify=False) as gateway:
        assert "https://gw.example:4001" in repr(gateway)
