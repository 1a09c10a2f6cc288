"""``KeyRing``: the :class:`~eventgateway.auth.base.Authenticator` of one gateway process.

It holds the claimed spaces and the hashes of their keys in memory, built from
:meth:`ConfigStore.snapshot` and kept current by :meth:`ConfigStore.watch` (like
``routing/sync.py`` keeps the routing table), so checking a request is a regex, a dict
lookup and one SHA-256. Writes made through this process call :meth:`KeyRing.refresh`
before they are answered, so a revoked key is refused from the very next request; other
processes sharing the store follow through the watch.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable

import msgspec

from eventgateway.auth.base import SCOPES, Authenticator, Principal, Scope, SpaceSettings
from eventgateway.auth.keys import is_expired, parse_key, token_digest, verify_secret
from eventgateway.errors import StoreError
from eventgateway.model.entities import AUTH_KINDS
from eventgateway.model.spaces import ApiKey, Space, decode_api_key, decode_space
from eventgateway.store.base import Change, ConfigStore

__all__ = ["OPERATOR_KEY_ID", "KeyRing"]

logger = logging.getLogger(__name__)

OPERATOR_KEY_ID = "operator"
_OPERATOR = Principal(OPERATOR_KEY_ID, None, frozenset(SCOPES))

Clock = Callable[[], float]


class KeyRing(Authenticator):
    """Spaces and keys of ``store``, in memory; see the module docstring.

    Args:
        store: the config store (opened by the caller).
        clock: wall-clock seconds, for key expiry; tests pass a fake one.

    .. versionadded:: 0.2.0
    """

    def __init__(self, store: ConfigStore, *, clock: Clock = time.time) -> None:
        self.clock = clock
        self.store = store
        self._spaces: dict[str, Space] = {}
        self._keys: dict[str, ApiKey] = {}
        self._operator: bytes | None = None
        self._revision = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        # Called with a space's name when the store shows it deleted (or claimed anew),
        # whichever process did it: the app ends what this process still runs for it.
        self.on_space_ended: Callable[[str], None] | None = None

    # -- the operator key -----------------------------------------------------------------

    def set_operator_key(self, token: str | None) -> None:
        """Accept ``token`` as the operator key from now on (``None``: no operator key)."""
        self._operator = None if token is None else token_digest(token)

    @property
    def has_operator_key(self) -> bool:
        """Whether an operator key is set."""
        return self._operator is not None

    # -- Authenticator --------------------------------------------------------------------

    def now(self) -> float:
        """The ring's clock (what expiry is measured against)."""
        return self.clock()

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of ``token``, or ``None``; see :class:`Authenticator`."""
        if not token:
            return None
        if self._operator is not None and hmac.compare_digest(token_digest(token), self._operator):
            return _OPERATOR
        parsed = parse_key(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        key = self._keys.get(key_id)
        if key is None or not verify_secret(key_id, secret, key.secret_hash):
            return None
        space = self._spaces.get(key.space)
        if space is None or not space.active or is_expired(key.expires_at, self.clock()):
            return None
        scopes = frozenset(scope for scope in SCOPES if scope in key.scopes)
        return Principal(key_id, key.space, scopes)

    def space(self, name: str) -> SpaceSettings | None:
        """The settings of claimed space ``name``, or ``None``."""
        space = self._spaces.get(name)
        if space is None or not space.active:
            return None
        return SpaceSettings(space.name, emit_requires_key=space.emit_requires_key)

    def claimed(self) -> list[str]:
        """The names of the claimed spaces, sorted."""
        return sorted(name for name, space in self._spaces.items() if space.active)

    def allows(self, token: str | None, space: str, scope: Scope) -> bool:
        """Whether ``token`` may act with ``scope`` in ``space`` (a convenience)."""
        principal = self.authenticate(token)
        return principal is not None and principal.allows(space, scope)

    # -- keeping current ------------------------------------------------------------------

    async def refresh(self) -> None:
        """Rebuild from a fresh snapshot (at start, and after writes made through here)."""
        snapshot = await self.store.snapshot()
        if snapshot.revision < self._revision:
            return  # the watch already brought something newer
        spaces: dict[str, Space] = {}
        keys: dict[str, ApiKey] = {}
        for entry in snapshot.entries:
            if entry.kind == "spaces":
                if (space := _decode_space(entry.value)) is not None:
                    spaces[space.name] = space
            elif entry.kind == "keys" and (key := _decode_key(entry.value)) is not None:
                keys[key.key_id] = key
        ended = [name for name in self._spaces if self._ends(name, spaces.get(name))]
        # Both swapped with no await in between: a request sees the old ring or the new.
        self._spaces, self._keys = spaces, keys
        for name in ended:
            self._space_ended(name)
        self._advance(snapshot.revision)

    @property
    def revision(self) -> int:
        """The store revision the ring reflects."""
        return self._revision

    async def wait_for(self, revision: int) -> None:
        """Return once the ring reflects store revision ``revision`` (or a later one).

        For callers that wrote through another process (or store client) and must not
        act before this ring has seen the write.
        """
        if self._revision >= revision:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, future))
        await future

    def _advance(self, revision: int) -> None:
        self._revision = revision
        waiting = []
        for wanted, future in self._waiters:
            if wanted <= revision:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((wanted, future))
        self._waiters = waiting

    async def run(self) -> None:
        """Follow the store's watch until it ends (the store closes)."""
        try:
            async for change in self.store.watch(self._revision):
                self._apply(change)
        except StoreError:
            logger.exception("config store watch failed; keys change only through this process now")

    def _apply(self, change: Change) -> None:
        if change.revision <= self._revision:
            return  # already in a snapshot taken by refresh()
        if change.kind not in AUTH_KINDS:
            self._advance(change.revision)
            return
        if change.kind == "spaces":
            space = None if change.value is None else _decode_space(change.value)
            # An undecodable record is skipped, as below, not taken for a delete.
            ended = (change.value is None or space is not None) and self._ends(change.key, space)
            if change.value is None:
                self._spaces.pop(change.key, None)
            elif space is not None:
                self._spaces[space.name] = space
            if ended:
                self._space_ended(change.key)
        elif change.value is None:
            self._keys.pop(change.key, None)
        elif (key := _decode_key(change.value)) is not None:
            self._keys[key.key_id] = key
        self._advance(change.revision)

    def _ends(self, name: str, new: Space | None) -> bool:
        old = self._spaces.get(name)
        if old is None or not old.active:
            return False
        return new is None or not new.active or new.created_at != old.created_at

    def _space_ended(self, name: str) -> None:
        if self.on_space_ended is None:
            return
        try:
            self.on_space_ended(name)
        except Exception:  # the ring must stay current whatever a listener does
            logger.exception("ending what runs for deleted space %r failed", name)


def _decode_space(raw: bytes) -> Space | None:
    try:
        return decode_space(raw)
    except msgspec.MsgspecError:
        logger.error("a stored space cannot be read; it is ignored")
        return None


def _decode_key(raw: bytes) -> ApiKey | None:
    try:
        return decode_api_key(raw)
    except msgspec.MsgspecError:
        # Never log the value: it holds a key hash.
        logger.error("a stored API key cannot be read; it is ignored")
        return None
