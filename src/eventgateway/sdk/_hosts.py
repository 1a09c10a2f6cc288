"""Which URLs the SDK accepts, and which space a hosted-style host names — no I/O.

A hosted-style URL names its space in the host: ``eg serve --domain example.com`` routes a
request to ``acme.example.com/x`` as ``/acme/x`` (the original hosted service's rule).
A URL's path may end with the space (``http://localhost:4000/acme``, what ``eg deploy``
prints as where to emit); any other path is a prefix, a reverse proxy's
(:func:`path_space`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from eventgateway.names import is_valid_space

__all__ = ["hosted_space", "path_space", "split_url"]

# The host rule `eg` applies to --url (deploy/manifest.py): letters, digits, "." "-" "_" "~".
_HOST: Final = re.compile(r"[\w.~-]+")


def split_url(url: str) -> tuple[SplitResult, str, int | None]:
    """``url`` split, with its lower-case host name and port.

    Raises:
        ValueError: not an http(s) URL with a valid host and port.
    """
    if "://" not in url:
        url = "http://" + url  # as the original SDK does
    problem = f"URL {url!r} is not http(s)://host[:port]: e.g. http://localhost:4000"
    # urlsplit silently drops tabs and newlines, so look at the text as written.
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ValueError(problem)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not 0-65535
    except ValueError:  # also a bad IPv6 literal
        raise ValueError(problem) from None
    hostname = parts.hostname or ""
    ipv6 = parts.netloc.rpartition("@")[2].startswith("[")
    if parts.scheme not in ("http", "https") or not (ipv6 or _HOST.fullmatch(hostname)):
        raise ValueError(problem)
    return parts, hostname, port


def hosted_space(hostname: str, space: str | None, domain: str | None) -> str | None:
    """The space a hosted-style host names (its first label), or ``None``: not hosted.

    A host is hosted-style when it is ``<label>.<domain>`` for the given ``domain``; without
    one, when it is ``<label>.localhost`` (which every gateway routes to ``/<label>/``), or
    when its first label is ``space`` (``https://acme.example.com`` with space ``acme``).

    Raises:
        ValueError: the host is not under ``domain``, or names a space other than ``space``.
    """
    label, _, parent = hostname.partition(".")
    if domain is not None:
        suffix = domain.lower().strip(".")
        if hostname == suffix:
            return None  # the gateway routes this host by path alone
        if not hostname.endswith("." + suffix):
            raise ValueError(
                f"host {hostname!r} is not <space>.{suffix}: with domain={domain!r}, use a "
                f"URL such as http://{space or 'acme'}.{suffix}"
            )
    elif not (parent == "localhost" or parent.endswith(".localhost")):
        return label if parent and label == space else None
    if space is not None and space != label:
        # The gateway would route the emits to space "<label>", the configuration calls
        # would go to "<space>": refuse rather than split one client over two spaces.
        raise ValueError(
            f"host {hostname!r} names the space {label!r} (the gateway routes it to "
            f"/{label}/), but space={space!r} was given: leave space out or pass "
            f"space={label!r}, or use a URL without the space in its host"
        )
    return label


def path_space(url: str, space: str | None, domain: str | None) -> tuple[str, str | None]:
    """``url`` without a last path segment that names the space, and the space.

    The gateway routes ``/<space>/…`` to a space, and ``eg deploy`` prints
    ``http://localhost:4000/acme`` as where to emit, so people paste it: taken as the base
    URL it sent every emit to ``/acme/acme/``, accepted and delivered nowhere. So a last
    segment equal to ``space`` is dropped, and with no ``space`` given, a path of a single
    space name is that space. Any other path is kept, as a prefix: a gateway behind a
    reverse proxy (``https://api.example.com/eventgateway``, an ingress rule) is reached
    below it.

    Raises:
        ValueError: ``url`` is no http(s) URL, or its host is not under ``domain``.
    """
    parts, hostname, _ = split_url(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments:
        return url, space
    last = segments[-1]
    if space is None:
        host_space = hosted_space(hostname, None, domain)
        if len(segments) > 1 or not is_valid_space(last) or host_space not in (None, last):
            return url, space
    elif last != space:
        return url, space
    prefix = "".join(f"/{segment}" for segment in segments[:-1])
    return urlunsplit((parts.scheme, parts.netloc, prefix, "", "")), last
