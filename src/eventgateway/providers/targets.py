"""Which addresses outbound calls may reach: the pure policy of the SSRF guard.

A gateway with keys (auth mode) runs functions for people who should not be able to make it
call what only the gateway's host can reach: its loopback, the cloud metadata service at
169.254.169.254, the private network behind it. :class:`TargetPolicy` decides, for one IP
address, whether a call may go there; ``providers/guard.py`` applies it to every address a
call would connect to, and to URLs at registration.

The tables are written out rather than taken from ``ipaddress``'s ``is_private`` and
``is_global``, whose answers changed between Python versions: the refused ranges must be
the same on every install and are listed in docs/security.md.

No I/O here: addresses in, decisions out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "IPAddress",
    "IPNetwork",
    "Refusal",
    "TargetPolicy",
    "classify",
    "parse_address",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOOPBACK: Final = "loopback"
_LINK_LOCAL: Final = "link-local"
_PRIVATE: Final = "private"
_MULTICAST: Final = "multicast"
_UNSPECIFIED: Final = "unspecified"
_RESERVED: Final = "reserved"


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), kind) for cidr, kind in rows)


# IANA special-purpose registries (RFC 6890 and updates), the ranges that are not the public
# internet. A call to any of them is refused unless allowed.
_IPV4: Final = _table(
    [
        ("0.0.0.0/8", _UNSPECIFIED),  # "this network": Linux connects 0.0.0.0 to loopback
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", _PRIVATE),  # carrier-grade NAT, often a cloud's internal network
        ("127.0.0.0/8", _LOOPBACK),
        ("169.254.0.0/16", _LINK_LOCAL),  # includes the metadata service 169.254.169.254
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", _RESERVED),
        ("192.0.2.0/24", _RESERVED),
        ("192.88.99.0/24", _RESERVED),
        ("192.168.0.0/16", _PRIVATE),
        ("198.18.0.0/15", _RESERVED),
        ("198.51.100.0/24", _RESERVED),
        ("203.0.113.0/24", _RESERVED),
        ("224.0.0.0/4", _MULTICAST),
        ("240.0.0.0/4", _RESERVED),  # includes the broadcast address 255.255.255.255
    ]
)
_IPV6: Final = _table(
    [
        ("::/128", _UNSPECIFIED),
        ("::1/128", _LOOPBACK),
        ("64:ff9b:1::/48", _PRIVATE),  # local-use NAT64
        ("100::/64", _RESERVED),
        ("2001:2::/48", _RESERVED),
        ("2001:10::/28", _RESERVED),
        ("2001:20::/28", _RESERVED),
        ("2001:db8::/32", _RESERVED),
        ("fc00::/7", _PRIVATE),
        ("fe80::/10", _LINK_LOCAL),
        ("fec0::/10", _PRIVATE),
        ("ff00::/8", _MULTICAST),
    ]
)
# Only 2000::/3 is allocated as global unicast; the rest of the IPv6 space is not the internet.
_IPV6_GLOBAL: Final = ipaddress.IPv6Network("2000::/3")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_TEREDO: Final = ipaddress.IPv6Network("2001::/32")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the guard refuses one address: ``kind`` is loopback, private, link-local…"""

    address: IPAddress
    kind: str
    via: str = ""  # how an IPv4 address was embedded in an IPv6 one, e.g. "IPv4-mapped"

    @property
    def reason(self) -> str:
        """``a loopback address`` or ``a private address (NAT64 of 10.0.0.1)``."""
        article = "an" if self.kind[0] in "aeiou" else "a"
        return f"{article} {self.kind} address{f' ({self.via})' if self.via else ''}"

    @property
    def allow_flag(self) -> str:
        """The ``--allow-target`` value that would let exactly this address through."""
        address = self.address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # an IPv4 entry covers its mapped form too
        bits = 32 if address.version == 4 else 128
        return f"{address}/{bits}"

    def message(self, url: str) -> str:
        """The error text for a call to ``url`` that would have connected to this address."""
        return (
            f"target {self.address} (for {url}) is {self.reason}; refused by the SSRF guard "
            f"(allow it with --allow-target {self.allow_flag} or --allow-private-targets)"
        )


def _kind(table: tuple[tuple[IPNetwork, str], ...], address: IPAddress) -> str | None:
    for network, kind in table:
        if address in network:
            return kind
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    # Forms in which an IPv6 connection reaches an IPv4 host: judge the IPv4 host.
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address.teredo is not None:
        return address.teredo[1], "Teredo"
    return None


def classify(address: IPAddress) -> Refusal | None:
    """The refusal for an address that is not on the public internet, else ``None``."""
    if isinstance(address, ipaddress.IPv4Address):
        kind = _kind(_IPV4, address)
        return None if kind is None else Refusal(address, kind)
    # A zone (fe80::1%eth0) does not change which range the address is in.
    bare = ipaddress.IPv6Address(int(address))
    embedded = _embedded_ipv4(bare)
    if embedded is not None:
        inner, via = embedded
        kind = _kind(_IPV4, inner)
        if kind is None:
            return None
        return Refusal(address, kind, via=f"{via} {inner}")
    kind = _kind(_IPV6, bare)
    if kind is None and bare not in _IPV6_GLOBAL:
        kind = _RESERVED
    return None if kind is None else Refusal(address, kind)


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which IP addresses outbound calls (``http`` functions) may connect to.

    Args:
        allow_private: ``True`` switches the guard off (the open modes: ``eg dev``,
            ``eg serve --no-auth``); ``False`` refuses loopback, link-local, private,
            shared (CGNAT), multicast, unspecified and reserved addresses, including their
            IPv4-mapped, NAT64, 6to4 and Teredo forms.
        allow_list: networks that are always allowed, refused ranges or not.

    .. versionadded:: 0.1.0
    """

    allow_private: bool = False
    allow_list: tuple[IPNetwork, ...] = ()

    @property
    def is_open(self) -> bool:
        """True when every address is allowed (nothing to check)."""
        return self.allow_private

    def check(self, address: IPAddress) -> Refusal | None:
        """``None`` when a call may connect to ``address``, else why not."""
        if self.allow_private:
            return None
        refusal = classify(address)
        if refusal is None or self._listed(address):
            return None
        return refusal

    def _listed(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            bare = ipaddress.IPv6Address(int(address))
            candidates.append(bare)
            # ::ffff:a.b.c.d is the same host as a.b.c.d: an IPv4 entry covers both.
            if bare.ipv4_mapped is not None:
                candidates.append(bare.ipv4_mapped)
        return any(
            candidate in network
            for network in self.allow_list
            for candidate in candidates
            if candidate.version == network.version
        )

    def check_text(self, host: str) -> Refusal | None:
        """Like :meth:`check` for a host that may be an IP literal; ``None`` for a name."""
        address = parse_address(host)
        return None if address is None else self.check(address)


def parse_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells (``[::1]`` brackets allowed), or ``None`` for a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``--allow-target`` values: addresses (one host) or CIDR networks.

    Raises:
        ValueError: a value is neither; the message quotes it and shows the expected form.
    """
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"allowed target {value!r} is not an IP address or network; use e.g. "
                "10.1.2.3, 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(networks)
