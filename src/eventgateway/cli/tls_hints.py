"""What `eg` says when a gateway answers over TLS with a certificate it does not accept:
the gateway is there, so "start one with `eg serve`" would mislead (docs/security.md)."""

from __future__ import annotations

import ssl
from typing import Final

__all__ = ["certificate_refused", "untrusted_message"]

_HOSTNAME_MISMATCH: Final = 62  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH


def certificate_refused(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed behind ``error`` (httpx chains it), if one did."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def untrusted_message(error: ssl.SSLCertVerificationError, url: str, flag: str) -> str:
    """One line for a gateway that answered with a certificate ``eg`` does not accept."""
    detail = error.verify_message or error.reason or str(error)
    if error.verify_code == _HOSTNAME_MISMATCH:
        return (
            f"the gateway at {url} answered, but its TLS certificate is not for that host "
            f"({detail}): point {flag} at a host name the certificate names"
        )
    # httpx reads SSL_CERT_FILE (and SSL_CERT_DIR) for every client `eg` makes.
    return (
        f"the gateway at {url} answered, but its TLS certificate is not trusted ({detail}): "
        "point SSL_CERT_FILE at the PEM file of the CA that signed it (or of the "
        "self-signed certificate itself), e.g. SSL_CERT_FILE=/etc/eg/ca.pem eg …; it "
        "replaces the public CAs for that command"
    )
