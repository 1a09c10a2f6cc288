"""Who is calling, and what they may do: the interface the APIs check requests against.

A *space* is claimed by creating it; it then has API keys. A key belongs to one space and
has scopes: ``admin`` (change the space's configuration), ``emit`` (send events to the
space through the Events API) and ``read`` (lists, logs, the delivery log). The operator
key (one per gateway) may do everything in every space and manage spaces.

:class:`Authenticator` answers from memory (a view kept current from the config store,
like the routing table), so checking a request costs a hash and a dict lookup.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "SCOPES",
    "Authenticator",
    "Principal",
    "Scope",
    "SpaceSettings",
]

Scope = Literal["admin", "emit", "read"]
SCOPES: Final[tuple[Scope, ...]] = ("admin", "emit", "read")


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid key.

    ``space`` is ``None`` for the operator key, which may do everything everywhere.
    """

    key_id: str
    space: str | None
    scopes: frozenset[Scope]

    @property
    def is_operator(self) -> bool:
        """Whether this is the gateway's operator key."""
        return self.space is None

    def allows(self, space: str, scope: Scope) -> bool:
        """Whether this key may act with ``scope`` in ``space``; ``admin`` implies ``read``."""
        if self.space is None:
            return True
        if self.space != space:
            return False
        return scope in self.scopes or (scope == "read" and "admin" in self.scopes)


@dataclass(frozen=True, slots=True)
class SpaceSettings:
    """A claimed space's settings, as the Events API needs them."""

    name: str
    emit_requires_key: bool = False  # False: public ingest (webhooks); True: private


class Authenticator(abc.ABC):
    """Checks keys and knows which spaces are claimed."""

    @abc.abstractmethod
    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of ``token`` (the raw key), or ``None``.

        ``None`` for a missing, malformed, unknown, revoked or expired key. Never raises;
        compares secrets in constant time; never logs the token.
        """

    @abc.abstractmethod
    def space(self, name: str) -> SpaceSettings | None:
        """The settings of claimed space ``name``; ``None`` when nobody claimed it."""
