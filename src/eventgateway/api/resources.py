"""The operations behind the Configuration API, over any :class:`ConfigStore`.

:class:`ConfigResources` creates, reads, lists, updates and deletes event types,
functions, subscriptions and CORS configurations with every cross-entity rule of the
original (contract §3): duplicates are 409, references must exist, entities in use cannot
be deleted, subscription and CORS identity fields are immutable (a subscription's
``delivery``, ``retryPolicy``, ``ordered`` and ``filter`` may change). Each method raises an
:class:`~eventgateway.errors.HTTPError` subclass carrying the original's message, so the
HTTP layer only has to encode results. Bodies may be raw bytes (decoded like Go did) or
already decoded mappings, so in-process callers (deploy, the test kit) can use it too.

Writes are serialised with one :class:`asyncio.Lock`, so check-then-write rules hold
within a process. Where the original misbehaved and this answers a client error
instead, docs/wire-compatibility.md says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final, TypeVar

import msgspec

from eventgateway.api.entity_checks import check_cors_route, check_http_url, check_sync_route
from eventgateway.api.quotas import refuse_over_quota
from eventgateway.api.resource_hooks import FunctionCheck, PathCheck, all_checks, matches_filters
from eventgateway.errors import ConflictError, NotFoundError, StoreError, ValidationError
from eventgateway.model.entities import (
    Cors,
    Entity,
    EventType,
    Function,
    Kind,
    Subscription,
    decode_entity,
    encode_entity,
)
from eventgateway.model.validate import (
    Body,
    parse_cors,
    parse_event_type,
    parse_function,
    parse_subscription,
)
from eventgateway.store.base import ConfigStore

__all__ = [
    "AUTHORIZER_MISSING",
    "ConfigResources",
    "FunctionCheck",
    "PathCheck",
    "all_checks",
    "matches_filters",
]

logger = logging.getLogger(__name__)

_E = TypeVar("_E", EventType, Function, Subscription, Cors)

AUTHORIZER_MISSING: Final = "Authorizer function doesn't exists."
_EVENT_TYPE_IN_USE: Final = "Event type cannot be deleted because there are subscriptions using it."
_FUNCTION_SUBSCRIBED: Final = (
    "Function cannot be deleted because it's subscribed to a least one event."
)
_NOT_FOUND: Final[dict[Kind, str]] = {
    "eventtypes": 'Event Type "{}" not found.',
    "functions": 'Function "{}" not found.',
    "subscriptions": 'Subscription "{}" not found.',
    "cors": 'CORS configuration "{}" not found.',
}
_EXISTS: Final[dict[Kind, str]] = {
    "eventtypes": 'Event Type "{}" already exists.',
    "functions": 'Function "{}" already registered.',
    "subscriptions": 'Subscription "{}" already exists.',
    "cors": 'CORS configuration "{}" already exists.',
}
_SUBSCRIPTION_IDENTITY: Final = (
    ("Type", "type"),
    ("EventType", "event_type"),
    ("FunctionID", "function_id"),
    ("Path", "path"),
    ("Method", "method"),
)


class ConfigResources:
    """Configuration operations with the original's rules and messages.

    Args:
        store: where the entities live; opened and closed by the caller.
        check_function: refuses functions that cannot run here.
        quotas: the most entities of each kind one space may hold (``0``: no limit).

    Every method raises :class:`ValidationError` (400), :class:`NotFoundError` (404) or
    :class:`ConflictError` (409) with the original's message, or lets a
    :class:`~eventgateway.errors.StoreError` through.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        store: ConfigStore,
        *,
        check_function: FunctionCheck | None = None,
        quotas: Mapping[Kind, int] | None = None,
        check_path: PathCheck | None = None,
    ) -> None:
        self.store = store
        # Checked on create only: an update may not change a path (an identity field).
        self._check_path = check_path
        # Entities per space and kind (0 or absent: unlimited); see api/quotas.py.
        self._quotas = dict(quotas or {})
        # Checks that need more than the store (a bundle was uploaded, Node.js is installed).
        self._check_function = check_function
        self._write_lock = asyncio.Lock()

    # -- store helpers ------------------------------------------------------------------

    @staticmethod
    def _decode(kind: Kind, cls: type[_E], raw: bytes) -> _E:
        try:
            entity = decode_entity(kind, raw)
        except msgspec.MsgspecError as exc:
            raise StoreError(f"a stored {kind} value cannot be read: {exc}") from exc
        if not isinstance(entity, cls):  # pragma: no cover - decode_entity picks cls by kind
            raise StoreError(f"a stored {kind} value is a {type(entity).__name__}")
        return entity

    async def _load(self, kind: Kind, cls: type[_E], space: str, key: str) -> _E | None:
        raw = await self.store.get(kind, space, key)
        return None if raw is None else self._decode(kind, cls, raw)

    async def _load_all(self, kind: Kind, cls: type[_E], space: str | None) -> list[_E]:
        raws = await (self.store.list_all(kind) if space is None else self.store.list(kind, space))
        return [self._decode(kind, cls, raw) for raw in raws]

    async def _require(self, kind: Kind, cls: type[_E], space: str, key: str) -> _E:
        entity = await self._load(kind, cls, space, key)
        if entity is None:
            raise NotFoundError(_NOT_FOUND[kind].format(key))
        return entity

    async def _refuse_existing(self, kind: Kind, space: str, key: str) -> None:
        if await self.store.get(kind, space, key) is not None:
            raise ConflictError(_EXISTS[kind].format(key))
        quota = self._quotas.get(kind, 0)
        if quota:  # after the 409: a re-deploy of an existing entity still reads "exists"
            refuse_over_quota(kind, space, len(await self.store.list(kind, space)), quota)

    async def _create(self, kind: Kind, entity: Entity) -> None:
        try:
            await self.store.create(kind, entity.space, entity.key, encode_entity(entity))
        except ConflictError as exc:
            # Lost a race with another process sharing the store.
            raise ConflictError(_EXISTS[kind].format(entity.key)) from exc

    async def _update(self, kind: Kind, entity: Entity) -> None:
        try:
            await self.store.update(kind, entity.space, entity.key, encode_entity(entity))
        except NotFoundError as exc:
            raise NotFoundError(_NOT_FOUND[kind].format(entity.key)) from exc

    async def _delete(self, kind: Kind, space: str, key: str) -> None:
        try:
            await self.store.delete(kind, space, key)
        except NotFoundError as exc:
            raise NotFoundError(_NOT_FOUND[kind].format(key)) from exc

    async def _check_authorizer(self, event_type: EventType) -> None:
        if event_type.authorizer_id is None:
            return
        if await self.store.get("functions", event_type.space, event_type.authorizer_id) is None:
            raise ValidationError(AUTHORIZER_MISSING)

    # -- event types --------------------------------------------------------------------

    async def create_event_type(self, space: str, body: Body) -> EventType:
        """Register an event type (201 in the API)."""
        event_type = parse_event_type(space, body)
        async with self._write_lock:
            await self._refuse_existing("eventtypes", space, event_type.name)
            await self._check_authorizer(event_type)
            await self._create("eventtypes", event_type)
        return event_type

    async def get_event_type(self, space: str, name: str) -> EventType:
        """One event type, or :class:`NotFoundError`."""
        return await self._require("eventtypes", EventType, space, name)

    async def list_event_types(
        self, space: str, filters: Mapping[str, str] | None = None
    ) -> list[EventType]:
        """The space's event types matching the metadata ``filters``, names descending."""
        found = await self._load_all("eventtypes", EventType, space)
        return [e for e in found if matches_filters(e.metadata, filters or {})]

    async def update_event_type(self, space: str, name: str, body: Body) -> EventType:
        """Replace an event type's authorizer and metadata (the name comes from the URL)."""
        event_type = parse_event_type(space, body, name=name)
        async with self._write_lock:
            await self.get_event_type(space, name)
            await self._check_authorizer(event_type)
            await self._update("eventtypes", event_type)
        return event_type

    async def delete_event_type(self, space: str, name: str) -> None:
        """Delete an event type no subscription of the space uses."""
        async with self._write_lock:
            await self.get_event_type(space, name)
            subscriptions = await self._load_all("subscriptions", Subscription, space)
            if any(s.event_type == name for s in subscriptions):
                raise ValidationError(_EVENT_TYPE_IN_USE)
            await self._delete("eventtypes", space, name)

    # -- functions ----------------------------------------------------------------------

    async def create_function(self, space: str, body: Body) -> Function:
        """Register a function; ``provider`` is normalised per type."""
        function = parse_function(space, body)
        check_http_url(function)
        if self._check_function is not None:
            checking = self._check_function(function)
            if checking is not None:
                await checking
        async with self._write_lock:
            await self._refuse_existing("functions", space, function.function_id)
            await self._create("functions", function)
        return function

    async def get_function(self, space: str, function_id: str) -> Function:
        """One function, or :class:`NotFoundError`."""
        return await self._require("functions", Function, space, function_id)

    async def list_functions(
        self, space: str, filters: Mapping[str, str] | None = None
    ) -> list[Function]:
        """The space's functions matching the metadata ``filters``, IDs descending."""
        found = await self._load_all("functions", Function, space)
        return [f for f in found if matches_filters(f.metadata, filters or {})]

    async def update_function(self, space: str, function_id: str, body: Body) -> Function:
        """Replace a function's type, provider and metadata (the ID comes from the URL)."""
        function = parse_function(space, body, function_id=function_id)
        check_http_url(function)
        if self._check_function is not None:
            checking = self._check_function(function)
            if checking is not None:
                await checking
        async with self._write_lock:
            await self.get_function(space, function_id)
            await self._update("functions", function)
        return function

    async def delete_function(self, space: str, function_id: str) -> None:
        """Delete a function that is neither subscribed nor an authorizer in the space."""
        async with self._write_lock:
            await self.get_function(space, function_id)
            subscriptions = await self._load_all("subscriptions", Subscription, space)
            if any(s.function_id == function_id for s in subscriptions):
                raise ValidationError(_FUNCTION_SUBSCRIBED)
            for event_type in await self._load_all("eventtypes", EventType, space):
                if event_type.authorizer_id == function_id:
                    raise ValidationError(
                        f"Function {function_id} cannot be deleted because is used as an "
                        f"authorizer for {event_type.name} event type."
                    )
            await self._delete("functions", space, function_id)

    # -- subscriptions ------------------------------------------------------------------

    async def create_subscription(self, space: str, body: Body) -> Subscription:
        """Subscribe a function to an event type on (method, path)."""
        subscription = parse_subscription(space, body)
        if self._check_path is not None:
            self._check_path(subscription)
        async with self._write_lock:
            await self._refuse_existing("subscriptions", space, subscription.subscription_id)
            if subscription.type == "sync":
                others = await self._load_all("subscriptions", Subscription, None)
                check_sync_route(subscription, others)
            if await self.store.get("eventtypes", space, subscription.event_type) is None:
                raise ValidationError(_NOT_FOUND["eventtypes"].format(subscription.event_type))
            if await self.store.get("functions", space, subscription.function_id) is None:
                raise ValidationError(_NOT_FOUND["functions"].format(subscription.function_id))
            await self._create("subscriptions", subscription)
        return subscription

    async def get_subscription(self, space: str, subscription_id: str) -> Subscription:
        """One subscription, or :class:`NotFoundError`."""
        return await self._require("subscriptions", Subscription, space, subscription_id)

    async def list_subscriptions(
        self, space: str, filters: Mapping[str, str] | None = None
    ) -> list[Subscription]:
        """The space's subscriptions matching the metadata ``filters``, IDs descending."""
        found = await self._load_all("subscriptions", Subscription, space)
        return [s for s in found if matches_filters(s.metadata, filters or {})]

    async def update_subscription(
        self, space: str, subscription_id: str, body: Body
    ) -> Subscription:
        """Replace a subscription's metadata, ``delivery``, ``retryPolicy``, ``ordered``
        and ``filter``.

        The body must repeat the identifying fields (type, event type, function, path,
        method) unchanged. Like ``metadata``, an added field left out of the body returns
        to its default.
        """
        new = parse_subscription(space, body)
        async with self._write_lock:
            old = await self.get_subscription(space, subscription_id)
            for field, attr in _SUBSCRIPTION_IDENTITY:
                if getattr(new, attr) != getattr(old, attr):
                    raise ValidationError(
                        f"Invalid update. '{field}' of existing subscription cannot be updated."
                    )
            if await self.store.get("functions", space, new.function_id) is None:
                raise ValidationError(_NOT_FOUND["functions"].format(new.function_id))
            updated = msgspec.structs.replace(
                old,
                metadata=new.metadata,
                delivery=new.delivery,
                retry_policy=new.retry_policy,
                ordered=new.ordered,
                filter=new.filter,
            )
            await self._update("subscriptions", updated)
        return updated

    async def delete_subscription(self, space: str, subscription_id: str) -> None:
        """Delete a subscription."""
        async with self._write_lock:
            await self._delete("subscriptions", space, subscription_id)

    # -- CORS ---------------------------------------------------------------------------

    async def create_cors(self, space: str, body: Body) -> Cors:
        """Create a CORS configuration for one (method, path)."""
        cors = parse_cors(space, body)
        if self._check_path is not None:
            self._check_path(cors)
        async with self._write_lock:
            await self._refuse_existing("cors", space, cors.cors_id)
            check_cors_route(cors, await self._load_all("cors", Cors, None))
            await self._create("cors", cors)
        return cors

    async def get_cors(self, space: str, cors_id: str) -> Cors:
        """One CORS configuration (``cors_id`` still percent-encoded), or :class:`NotFoundError`."""
        return await self._require("cors", Cors, space, cors_id)

    async def list_cors(self, space: str, filters: Mapping[str, str] | None = None) -> list[Cors]:
        """The space's CORS configurations matching the metadata ``filters``, IDs descending."""
        found = await self._load_all("cors", Cors, space)
        return [c for c in found if matches_filters(c.metadata, filters or {})]

    async def update_cors(self, space: str, cors_id: str, body: Body) -> Cors:
        """Replace the lists, credentials flag and metadata; method and path are fixed."""
        new = parse_cors(space, body)
        async with self._write_lock:
            old = await self.get_cors(space, cors_id)
            for field, attr in (("Method", "method"), ("Path", "path")):
                if getattr(new, attr) != getattr(old, attr):
                    raise ValidationError(
                        f"Invalid update. '{field}' of existing CORS configuration "
                        "cannot be updated."
                    )
            updated = msgspec.structs.replace(new, cors_id=old.cors_id)
            others = await self._load_all("cors", Cors, None)
            check_cors_route(updated, others, replacing=True)
            await self._update("cors", updated)
        return updated

    async def delete_cors(self, space: str, cors_id: str) -> None:
        """Delete a CORS configuration."""
        async with self._write_lock:
            await self._delete("cors", space, cors_id)
