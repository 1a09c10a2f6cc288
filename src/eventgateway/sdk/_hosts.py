"""Which URLs the SDK accepts, and which space a hosted-style host names — no I/O.

A hosted-style URL names its space in the host: ``eg serve --domain example.com`` routes a
request to ``acme.example.com/x`` as ``/acme/x`` (the original hosted service's rule).
A URL's path may name the space too (``http://localhost:4000/acme``, what ``eg deploy``
prints as where to emit); any other path is refused (:func:`path_space`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from eventgateway.names import is_valid_space

__all__ = ["UrlPathError", "hosted_space", "path_space", "split_url"]

Style = Literal["python", "flag", "env", "yaml"]
# How each kind of setting is written, for the "pass … instead" of a message.
_ASSIGN: Final[dict[Style, Callable[[str, str], str]]] = {
    "python": lambda name, value: f"{name}={value!r}",
    "flag": lambda name, value: f"{name} {value}",
    "env": lambda name, value: f"{name}={value}",
    "yaml": lambda name, value: f"{name}: {value}",
}

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
    one, when it is ``<label>.localhost`` (what ``eg serve --domain localhost`` serves), or
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
            f"host {hostname!r} names the space {label!r} (a gateway run with --domain "
            f"routes it to /{label}/), but space={space!r} was given: leave space out or "
            f"pass space={label!r}; if that gateway does not route by host, use a URL "
            "without the space in its host"
        )
    return label


class UrlPathError(ValueError):
    """A URL whose path the gateway does not serve, or names a space that something else
    contradicts; :meth:`describe` words it for the option that gave the URL.

    Attributes:
        url: the URL as given.
        base: the URL without its path (what to pass instead).
        path: its path.
        named: the space the path names, ``None`` when the path names none.
        other: the space it contradicts (``space``'s, or the host's when ``by_host``).
    """

    def __init__(
        self,
        url: str,
        base: str,
        path: str,
        named: str | None,
        other: str | None,
        *,
        by_host: bool = False,
    ) -> None:
        self.url, self.base, self.path = url, base, path
        self.named, self.other, self.by_host = named, other, by_host
        super().__init__(self.describe("url", "space", "python"))

    def describe(self, url_option: str, space_option: str, style: Style = "flag") -> str:
        """The one-line message, naming ``url_option``/``space_option`` written in ``style``
        (``--url``/``--space`` as flags, ``EG_URL``/``EG_SPACE`` as variables…)."""
        assign = _ASSIGN[style]
        start = f"{url_option} {self.url!r}"
        if self.named is None:
            return (
                f"{start} has the path {self.path!r}, which no gateway serves (the APIs are at the "
                f"root of the host; a path may only name the space, as {self.base}/<space>): "
                f"pass {assign(url_option, self.base)} and the space as "
                f"{assign(space_option, 'NAME')}"
            )
        if self.by_host:
            return (
                f"{start} names the space {self.named!r} in its path but {self.other!r} in its "
                f"host (a hosted-style host, routed to /{self.other}/): pass "
                f"{assign(url_option, self.base)}"
            )
        return (
            f"{start} names the space {self.named!r} in its path, but {space_option} is "
            f"{self.other!r}: pass {assign(url_option, self.base)} to work in {self.other!r}, "
            f"or leave {space_option} out (or give {self.named!r}) to work in {self.named!r}"
        )


def path_space(url: str, space: str | None, domain: str | None) -> tuple[str, str | None]:
    """``url`` without the path that names a space, and that space; ``(url, space)``
    when the path is empty or ``/``.

    The gateway serves both APIs at the root of its host, and routes ``/<space>/…`` to a
    space: a URL ``http://localhost:4000/acme`` (or ``…/acme/``) is
    ``http://localhost:4000`` in space ``acme`` — otherwise every emit would go to
    ``/acme/acme/``, accepted and delivered nowhere.

    Raises:
        UrlPathError: the path is anything else, or names a space other than ``space`` or
            than a hosted-style host's (see :func:`hosted_space`).
        ValueError: ``url`` is no http(s) URL, or its host is not under ``domain``.
    """
    parts, hostname, _ = split_url(url)
    if parts.path in ("", "/"):
        return url, space
    base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    named = parts.path.removeprefix("/").removesuffix("/")
    if "/" in named or not is_valid_space(named):
        raise UrlPathError(url, base, parts.path, None, space)
    if space is not None and space != named:
        raise UrlPathError(url, base, parts.path, named, space)
    host_space = hosted_space(hostname, None, domain)
    if host_space is not None and host_space != named:
        raise UrlPathError(url, base, parts.path, named, host_space, by_host=True)
    return base, named
