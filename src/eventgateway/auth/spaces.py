"""``SpaceAdmin``: claiming spaces and managing their keys, with every rule, over the store.

Rules (``docs/security.md``):

* Claiming creates the space and its first key (scopes ``admin``, ``emit``, ``read``).
  A claimed name is 409. A name that already holds configuration (written before auth
  mode, or by the operator) or that belonged to a deleted space can only be claimed by
  the operator (also 409 otherwise): its resources and logs must not pass to a stranger.
* A space is deleted only once it holds no event types, functions, subscriptions or CORS
  configurations (400 naming what is left; ``eg remove`` clears a service), and, when
  the admin is given ``holdings``, no dead letters and no deliveries still being made
  (400 with the counts: purge the one, wait for the other). Its keys are removed at
  once; the name stays taken (see :class:`~eventgateway.model.spaces.Space`). Then
  ``forget`` deletes its delivery history and function logs — and runs again before
  the operator claims the name anew, completing a forget a crash cut short and
  removing records that arrived after the delete (a late settle).
* An admin key that has not expired can be revoked only while another admin key outlives
  it (never expires, or expires no sooner) (400 otherwise): the space would be left, then
  or once a short-lived spare expired, without anyone to manage it. Create one first.

Every method raises an :class:`~eventgateway.errors.HTTPError` subclass with the message
the client sees, and refreshes the :class:`KeyRing` before returning from a write.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import msgspec

from eventgateway.auth.base import SCOPES, Scope
from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.keys import generate_key, is_expired
from eventgateway.errors import ConflictError, NotFoundError, StoreError, ValidationError
from eventgateway.model.entities import KINDS
from eventgateway.model.spaces import ApiKey, Space, decode_api_key, decode_space, encode_record
from eventgateway.model.validate import is_valid_space
from eventgateway.queue.log_views import SpaceHoldings
from eventgateway.store.base import ConfigStore

__all__ = ["Forget", "Holdings", "IssuedKey", "SpaceAdmin", "space_not_found"]

logger = logging.getLogger(__name__)

_MAX_KEY_TRIES = 3

Holdings = Callable[[str], Awaitable[SpaceHoldings]]
"""What a space still has in the delivery log (``DeliveryLog.holdings``)."""
Forget = Callable[[str], Awaitable[None]]
"""Deletes a space's delivery history and function logs; idempotent."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: ``token`` goes to the client once and is never stored."""

    key: ApiKey
    token: str

    def __repr__(self) -> str:
        return f"IssuedKey(key_id={self.key.key_id!r}, space={self.key.space!r})"


def space_not_found(name: str) -> NotFoundError:
    """The 404 for a space that is not claimed (or that the caller may not see)."""
    return NotFoundError(f'Space "{name}" not found.')


class SpaceAdmin:
    """Space and key operations; see the module docstring for the rules.

    Args:
        store: the config store (opened by the caller).
        keyring: refreshed after each write; its clock stamps and checks expiry.
        holdings: what a space still has in the delivery log; deleting it waits until
            that is nothing (400). ``None``: not checked.
        forget: deletes a space's delivery history and function logs, after the delete
            and before a deleted name is claimed again. ``None`` (a gateway without auth
            mode, where every log is open anyway): they stay until retention.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        store: ConfigStore,
        keyring: KeyRing,
        *,
        holdings: Holdings | None = None,
        forget: Forget | None = None,
        max_keys: int = 0,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self._max_keys = max_keys  # per space; 0: unlimited
        self._holdings = holdings
        self._forget = forget
        # Also keeps a delete's forget from running beside a claim of the same name,
        # which could delete what the new owner has just written.
        self._write_lock = asyncio.Lock()

    # -- spaces ---------------------------------------------------------------------------

    async def _load_space(self, name: str) -> Space | None:
        raw = await self.store.get("spaces", name, name)
        if raw is None:
            return None
        try:
            return decode_space(raw)
        except msgspec.MsgspecError as exc:
            raise StoreError(f'the stored space "{name}" cannot be read: {exc}') from exc

    async def get(self, name: str) -> Space:
        """A claimed space, or 404."""
        space = await self._load_space(name)
        if space is None or not space.active:
            raise space_not_found(name)
        return space

    async def list(self, only: str | None = None) -> builtins.list[Space]:
        """Claimed spaces sorted by name; only ``only`` when given."""
        names = self.keyring.claimed() if only is None else [only]
        found = [await self._load_space(name) for name in names]
        return [space for space in found if space is not None and space.active]

    async def _configured_kinds(self, name: str) -> dict[str, int]:
        counts = {kind: len(await self.store.list(kind, name)) for kind in KINDS}
        return {kind: count for kind, count in counts.items() if count}

    async def claim(
        self, name: str, *, emit_requires_key: bool = False, privileged: bool = False
    ) -> tuple[Space, IssuedKey]:
        """Claim ``name`` and issue its first key (all scopes).

        ``privileged`` (the operator, or a gateway without auth) may also claim a name that
        holds configuration or belonged to a deleted space.
        """
        if not is_valid_space(name):
            raise ValidationError(
                f"name {name!r} is not a valid space name: use 3 to 255 characters "
                'from a-z, A-Z, 0-9, ".", "-" and "_"'
            )
        async with self._write_lock:
            existing = await self._load_space(name)
            if existing is not None and existing.active:
                raise ConflictError(f'Space "{name}" already exists.')
            if not privileged:
                if existing is not None:
                    raise ConflictError(
                        f'Space "{name}" was deleted; only the operator may claim it again.'
                    )
                if await self._configured_kinds(name):
                    raise ConflictError(
                        f'Space "{name}" already holds configuration; only the operator '
                        "may claim it."
                    )
            if existing is not None and self._forget is not None:
                # Before the new owner's key exists: whatever of the deleted space is
                # still there (a forget cut short, a late settle) never reaches it.
                await self._forget(name)
            now = self.keyring.now()
            space = Space(name=name, created_at=now, emit_requires_key=emit_requires_key)
            issued = await self._issue(name, list(SCOPES), None, now)
            # The key first: a space never exists, even for a moment, without its key.
            try:
                if existing is None:
                    await self.store.create("spaces", name, name, encode_record(space))
                else:
                    await self.store.update("spaces", name, name, encode_record(space))
            except ConflictError:  # another process sharing the store claimed it first
                await self.store.delete("keys", name, issued.key.key_id)
                raise ConflictError(f'Space "{name}" already exists.') from None
            await self.keyring.refresh()
        return space, issued

    async def update(self, name: str, *, emit_requires_key: bool) -> Space:
        """Change whether emits into the space need a key."""
        async with self._write_lock:
            space = await self.get(name)
            updated = msgspec.structs.replace(space, emit_requires_key=emit_requires_key)
            await self.store.update("spaces", name, name, encode_record(updated))
            await self.keyring.refresh()
        return updated

    async def delete(self, name: str) -> None:
        """Delete an empty space and all its keys, then forget its logs; the name stays
        taken.

        Raises:
            ValidationError: the space still holds configuration, dead letters or
                deliveries not yet settled (the message counts them).
        """
        async with self._write_lock:
            space = await self.get(name)
            left = await self._configured_kinds(name)
            if left:
                listed = ", ".join(f"{count} {kind}" for kind, count in left.items())
                raise ValidationError(
                    f'Space "{name}" still holds configuration ({listed}); remove it first '
                    "(eg remove in the service's directory)."
                )
            if self._holdings is not None:
                problem = _still_held(name, await self._holdings(name))
                if problem:
                    raise ValidationError(problem)
            tombstone = msgspec.structs.replace(space, deleted_at=self.keyring.now())
            # The space first: from this write on, none of its keys authenticates, and a
            # forget cut short by a crash is completed when the name is claimed again.
            await self.store.update("spaces", name, name, encode_record(tombstone))
            for key in await self._keys(name):
                await self.store.delete("keys", name, key.key_id)
            await self.keyring.refresh()
            if self._forget is not None:
                try:
                    await self._forget(name)
                except StoreError:
                    # The delete itself holds; only the operator may claim the name, and
                    # the claim forgets first.
                    logger.exception(
                        "space %r is deleted, but its delivery log and function logs "
                        "could not be removed yet; they are before the name is claimed again",
                        name,
                    )

    # -- keys -----------------------------------------------------------------------------

    async def _keys(self, space: str) -> builtins.list[ApiKey]:
        keys = []
        for raw in await self.store.list("keys", space):
            try:
                keys.append(decode_api_key(raw))
            except msgspec.MsgspecError as exc:
                raise StoreError(f'a stored key of space "{space}" cannot be read') from exc
        return sorted(keys, key=lambda key: (key.created_at, key.key_id))

    async def _issue(
        self, space: str, scopes: builtins.list[str], expires_at: float | None, now: float
    ) -> IssuedKey:
        for _ in range(_MAX_KEY_TRIES):
            new = generate_key()
            key = ApiKey(
                key_id=new.key_id,
                space=space,
                secret_hash=new.secret_hash,
                scopes=scopes,
                created_at=now,
                expires_at=expires_at,
            )
            try:
                await self.store.create("keys", space, key.key_id, encode_record(key))
            except ConflictError:  # pragma: no cover - 64 random bits collided
                continue
            return IssuedKey(key, new.token)
        raise StoreError("could not find a free key id")  # pragma: no cover - see above

    async def create_key(
        self, space: str, scopes: Collection[Scope], *, expires_at: float | None = None
    ) -> IssuedKey:
        """Issue a key of ``space`` with ``scopes`` (at least one), expiring at ``expires_at``."""
        if not scopes:
            raise ValidationError('scopes must name at least one of "admin", "emit", "read"')
        now = self.keyring.now()
        if expires_at is not None and is_expired(expires_at, now):
            raise ValidationError("expiresAt is in the past: give a later time")
        ordered: builtins.list[str] = [scope for scope in SCOPES if scope in scopes]
        async with self._write_lock:
            await self.get(space)
            held = len(await self._keys(space))
            if self._max_keys and held >= self._max_keys:
                raise ValidationError(
                    f'Space "{space}" has reached its limit of {self._max_keys} keys (expired '
                    "ones count until revoked). Revoke some, or ask the operator to raise it "
                    "(eg serve --max-keys-per-space)."
                )
            issued = await self._issue(space, ordered, expires_at, now)
            await self.keyring.refresh()
        return issued

    async def list_keys(self, space: str) -> builtins.list[ApiKey]:
        """The keys of a claimed space, oldest first (hashes included: callers drop them)."""
        await self.get(space)
        return await self._keys(space)

    async def revoke_key(self, space: str, key_id: str) -> None:
        """Delete a key at once; an unexpired admin key only if another outlives it (400)."""
        async with self._write_lock:
            await self.get(space)
            keys = await self._keys(space)
            key = next((k for k in keys if k.key_id == key_id), None)
            if key is None:
                raise NotFoundError(f'Key "{key_id}" not found.')
            now = self.keyring.now()
            if (
                "admin" in key.scopes
                and not is_expired(key.expires_at, now)
                and not any(
                    _outlives(other, key)
                    for other in keys
                    if other is not key and "admin" in other.scopes
                )
            ):
                raise ValidationError(
                    f'Key "{key_id}" is the last admin key of space "{space}" that does not '
                    "expire before it; create another admin key first."
                )
            await self.store.delete("keys", space, key_id)
            await self.keyring.refresh()


def _still_held(name: str, held: SpaceHoldings) -> str:
    """The 400's message for what deleting ``name`` would lose; ``""`` if nothing."""
    dead, unsettled = held.dead_letters, held.unsettled
    letters = f"{dead} dead letter{'s' * (dead != 1)}"
    deliveries = f"{unsettled} deliver{'ies' if unsettled != 1 else 'y'} not yet settled"
    purge = f"DELETE /v1/spaces/{name}/deadletters?all=true"
    # No configuration is left, so no subscription: the dispatcher settles each unsettled
    # delivery as skipped ("subscription no longer exists") when it falls due, never as a
    # dead letter. Only an attempt already in flight may still end as one.
    wait = "with the space's subscriptions removed, each is skipped when it next falls due"
    if dead and unsettled:
        return (
            f'Space "{name}" still holds {letters} and {deliveries}: purge the dead letters '
            f"({purge}) and wait until the deliveries are settled ({wait}), then delete it."
        )
    if dead:
        them = "it" if dead == 1 else "them"
        return f'Space "{name}" still holds {letters}; purge {them} first ({purge}).'
    if unsettled:
        return (
            f'Space "{name}" still has {deliveries}, still being delivered ({wait}); '
            "delete it once none is left."
        )
    return ""


def _outlives(other: ApiKey, key: ApiKey) -> bool:
    if other.expires_at is None:
        return True
    return key.expires_at is not None and other.expires_at >= key.expires_at
