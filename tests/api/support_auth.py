"""A fixed, in-memory :class:`Authenticator` for Events API tests (the real one is KeyRing)."""

from __future__ import annotations

from eventgateway.auth.base import Authenticator, Principal, Scope, SpaceSettings

OPERATOR_KEY = "op-secret"


class StaticAuthenticator(Authenticator):
    """Spaces and keys given up front; ``private`` spaces need an emit key."""

    def __init__(self, *, private: tuple[str, ...] = (), public: tuple[str, ...] = ()) -> None:
        self.spaces = {name: SpaceSettings(name, emit_requires_key=True) for name in private}
        self.spaces.update({name: SpaceSettings(name) for name in public})
        self.keys = {OPERATOR_KEY: Principal("operator", None, frozenset())}
        self.seen: list[str | None] = []

    def add_key(self, token: str, space: str, *scopes: Scope) -> None:
        self.keys[token] = Principal(f"key-{token}", space, frozenset(scopes))

    def authenticate(self, token: str | None) -> Principal | None:
        self.seen.append(token)
        return None if token is None else self.keys.get(token)

    def space(self, name: str) -> SpaceSettings | None:
        return self.spaces.get(name)
