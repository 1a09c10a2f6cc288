"""``NatsBundleStore``: code bundles shared by instances through a JetStream Object Store.

Every upload is kept twice: extracted under this instance's data directory (by the
:class:`~eventgateway.runtime.bundles.BundleStore` this class extends) and, as the zip,
in the object store ``<prefix>-bundles`` under its SHA-256. An instance that lacks a
bundle fetches the zip in :meth:`NatsBundleStore.ensure` (the runtime provider calls it
before each invocation), checks its hash, and extracts and installs it like an upload.

:meth:`exists` must answer without I/O (a function is validated at registration), so the
store watches the bucket's metadata and knows every bundle any instance stored.

Garbage collection (:meth:`NatsBundleStore.collect_garbage`, every ``gc_interval_s`` on
every instance): a bundle no function of any space names (``provider.bundle`` in the
configuration bucket ``<prefix>-config``) and stored more than ``gc_grace_s`` ago is
deleted from the bucket; the grace keeps an upload and the function write that follows
it from racing the sweep. Every instance sees the delete in its watch and drops its own
extracted copy too, so all of them agree it is gone (``eg deploy`` then uploads it again).

nats errors are translated into :class:`~eventgateway.errors.StoreError` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import StorageType
from nats.js.object_store import ObjectStore

from eventgateway.errors import StoreError
from eventgateway.runtime.base import BundleInfo
from eventgateway.runtime.bundle_archive import remove
from eventgateway.runtime.bundles import BundleStore, is_bundle_id
from eventgateway.store._nats_feed import is_marker, scan
from eventgateway.store._nats_keys import kind_filter, valid_prefix

__all__ = ["DEFAULT_PREFIX", "NatsBundleStore"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "eventgateway"
_LIST_TIMEOUT_S: Final = 30.0  # one listing of the bucket's metadata (a sweep)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise StoreError(f"NATS bundle store failed to {action}: {exc!r}") from exc


class NatsBundleStore(BundleStore):
    """Bundles under ``root``, shared with other instances through ``<prefix>-bundles``.

    Args:
        root: this instance's bundles directory, usually ``<data-dir>/bundles``.
        nc: a connected client; the store never closes it.
        prefix: starts the bucket's name (as for the config store).
        transfer_timeout_s: how long storing or fetching one zip may take.
        replicas: the bucket's replicas when this store creates it; use 3 in a cluster.
        gc_grace_s: how long a bundle no function names is kept after it was stored.
        gc_interval_s: how often :meth:`collect_garbage` runs once opened (``None``: never).
        clock: wall-clock seconds, compared with each bundle's upload time.
        options: the :class:`BundleStore` limits and installer commands.

    Raises:
        ValueError: ``prefix`` holds characters a bucket name cannot.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        root: Path,
        nc: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        transfer_timeout_s: float = 120.0,
        replicas: int = 1,
        gc_grace_s: float = 3600.0,
        gc_interval_s: float | None = 600.0,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        if not valid_prefix(prefix):
            raise ValueError(f"prefix {prefix!r}: use 1 to 64 of A-Z, a-z, 0-9, '-' and '_'")
        super().__init__(root, **options)
        self.bucket = f"{prefix}-bundles"
        self._config = f"{prefix}-config"  # the config store's KV bucket (functions)
        self._js = nc.jetstream()
        self._transfer_timeout_s = transfer_timeout_s
        self._replicas = replicas
        self._objects: ObjectStore | None = None
        self._stored: set[str] = set()  # bundle ids in the bucket, from its watch
        self._learned = asyncio.Condition()  # notified when the watch adds one
        self._watch: asyncio.Task[None] | None = None
        self._fetching: dict[str, asyncio.Task[BundleInfo | None]] = {}
        self._gc_grace_s = gc_grace_s
        self._gc_interval_s = gc_interval_s
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Create the bucket if it is missing and learn which bundles it holds.

        Raises:
            StoreError: NATS refused or did not answer.
        """
        with _translated(f"open the object store {self.bucket}"):
            async with asyncio.timeout(self._transfer_timeout_s):
                self._objects = await self._js.create_object_store(
                    self.bucket, storage=StorageType.FILE, replicas=self._replicas
                )
                watcher = await self._objects.watch()
                while (info := await _next(watcher, self._transfer_timeout_s)) is not None:
                    await self._learn(info.name, deleted=bool(info.deleted))
        self._watch = asyncio.create_task(self._follow(watcher), name=f"{self.bucket}-watch")
        if self._gc_interval_s is not None:
            self._sweeper = asyncio.create_task(
                self._sweep_every(self._gc_interval_s), name=f"{self.bucket}-gc"
            )

    async def close(self) -> None:
        """Stop watching the bucket and sweeping it."""
        for task in (self._sweeper, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _follow(self, watcher: ObjectStore.ObjectWatcher) -> None:
        try:
            async for info in watcher:
                if info is not None:
                    await self._learn(info.name, deleted=bool(info.deleted))
                    async with self._learned:
                        self._learned.notify_all()
        finally:
            with contextlib.suppress(nats.errors.Error):
                await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: unannotated

    async def _learn(self, name: str, *, deleted: bool) -> None:
        """Note a stored bundle, or forget a deleted one (here too: see the module doc)."""
        if not deleted:
            self._stored.add(name)
            return
        self._stored.discard(name)
        if is_bundle_id(name) and self.get(name) is not None:
            self._known.pop(name, None)
            # Renamed away first, so nothing sees half a bundle; a crash leaves a
            # staging directory that remove_stale deletes at the next start.
            gone = self.root / f".tmp-{name}-gone-{secrets.token_hex(4)}"
            try:
                await asyncio.to_thread((self.root / name).rename, gone)
            except FileNotFoundError:  # the watch and a sweep both saw the delete
                return
            except OSError as exc:
                logger.warning("could not remove bundle %s here: %s", name, exc)
                return
            await asyncio.to_thread(remove, gone)
            logger.info("Removed bundle %s: deleted from %s", name, self.bucket)

    def _bucket(self) -> ObjectStore:
        if self._objects is None:
            raise StoreError(f"the bundle store {self.bucket} is not open; call open() first")
        return self._objects

    async def add(self, zip_bytes: bytes) -> tuple[BundleInfo, bool]:
        """Store the zip here and in the bucket; see :meth:`BundleStore.add`.

        Raises:
            ValidationError: as :meth:`BundleStore.add`.
            StoreError: as :meth:`BundleStore.add`, or the zip cannot be stored in NATS.
        """
        info, created = await super().add(zip_bytes)
        if info.bundle_id not in self._stored:
            # Only after extracting succeeded: a zip that does not install is not shared.
            with _translated(f"store bundle {info.bundle_id} in {self.bucket}"):
                async with asyncio.timeout(self._transfer_timeout_s):
                    await self._bucket().put(info.bundle_id, zip_bytes)
            self._stored.add(info.bundle_id)
        return info, created

    def exists(self, bundle_id: str) -> bool:
        """Whether the bundle is here, or in the bucket to be fetched on first use."""
        return bundle_id in self._stored or self.get(bundle_id) is not None

    async def wait_known(self, bundle_id: str, timeout_s: float) -> bool:
        """Wait until :meth:`exists` is true for ``bundle_id``; False after ``timeout_s``.

        Another instance's upload reaches this one's watch a moment after it returns.
        """
        try:
            async with asyncio.timeout(timeout_s), self._learned:
                await self._learned.wait_for(lambda: self.exists(bundle_id))
        except TimeoutError:
            return False
        return True

    async def ensure(self, bundle_id: str) -> BundleInfo | None:
        """The bundle, fetched from the bucket and installed here first if missing.

        Concurrent calls for one bundle share one fetch. ``None`` if no instance stored it.

        Raises:
            ValidationError: the stored zip no longer installs (say, a dependency vanished).
            StoreError: NATS did not answer, or the zip's hash is not its name.
        """
        local = self.get(bundle_id)
        if local is not None or not is_bundle_id(bundle_id):
            return local
        task = self._fetching.get(bundle_id)
        if task is None:
            task = asyncio.create_task(self._fetch(bundle_id), name=f"fetch-{bundle_id[:12]}")
            self._fetching[bundle_id] = task
            task.add_done_callback(lambda _: self._fetching.pop(bundle_id, None))
        return await asyncio.shield(task)

    async def _fetch(self, bundle_id: str) -> BundleInfo | None:
        bucket = self._bucket()
        with _translated(f"fetch bundle {bundle_id} from {self.bucket}"):
            async with asyncio.timeout(self._transfer_timeout_s):
                try:
                    meta = await bucket.get_info(bundle_id)
                except nats.js.errors.NotFoundError:
                    return None
                self.check_size(meta.size or 0)  # before the zip is in memory
                result = await bucket.get(bundle_id)
        data = bytes(result.data or b"")
        if hashlib.sha256(data).hexdigest() != bundle_id:
            raise StoreError(f"bundle {bundle_id} in {self.bucket} does not match its hash")
        logger.info("Installing bundle %s fetched from %s", bundle_id, self.bucket)
        info, _ = await super().add(data)
        return info

    # -- garbage collection ---------------------------------------------------------------

    async def collect_garbage(self) -> list[str]:
        """Delete the bundles no function names that were stored over ``gc_grace_s`` ago.

        Returns the ids deleted by this call (another instance's sweep may delete the
        same ones; that is harmless).

        Raises:
            StoreError: NATS refused or did not answer (nothing further is deleted).
        """
        bucket = self._bucket()
        cutoff = self._clock() - self._gc_grace_s
        infos = await self._list()
        for info in infos:
            # The listing is the truth: catch up on what the watch missed (nats-server
            # 2.9.10 can skip a watched update when a purge follows it at once: its PR
            # #3838), so a missed delete still removes this instance's copy.
            await self._learn(info["name"], deleted=info["deleted"])
        old = [
            i["name"]
            for i in infos
            if not i["deleted"] and is_bundle_id(i["name"]) and _stored_at(i["mtime"]) < cutoff
        ]
        if not old:
            return []
        # Read after the listing: a function written since names a bundle listed as old.
        named = await self._named()
        removed = []
        for bundle_id in old:
            if bundle_id in named:
                continue
            with _translated(f"delete bundle {bundle_id} from {self.bucket}"):
                try:
                    await bucket.delete(bundle_id)
                except nats.js.errors.NotFoundError:  # another instance's sweep was first
                    continue
            await self._learn(bundle_id, deleted=True)  # not waiting for the watch
            removed.append(bundle_id)
        return removed

    async def _list(self) -> list[dict[str, Any]]:
        """Every object's name, ``deleted`` and ``mtime``, from the bucket's metadata.

        Read through :func:`scan` (bounded, its consumer always removed, and ended when
        idle), not nats-py's ``list()``: that waits for a marker which the 2.9.10 purge
        bug above can swallow, and then never returns.
        """
        with _translated(f"list the bundles in {self.bucket}"):
            messages = await scan(
                self._js,
                f"OBJ_{self.bucket}",
                f"$O.{self.bucket}.M.>",
                _LIST_TIMEOUT_S,
                idle_s=0.5,
            )
        infos = []
        for msg in messages:
            try:
                meta = json.loads(msg.data)
                infos.append(
                    {
                        "name": str(meta["name"]),
                        "deleted": bool(meta.get("deleted")),
                        "mtime": meta.get("mtime"),
                    }
                )
            except (ValueError, KeyError, TypeError):
                continue  # not an object's metadata
        return infos

    async def _named(self) -> set[str]:
        """Every bundle id a function of any space names, from the configuration bucket."""
        with _translated(f"read the functions in {self._config}"):
            messages = await scan(
                self._js,
                f"KV_{self._config}",
                f"$KV.{self._config}.{kind_filter('functions')}",
                self._transfer_timeout_s,
            )
        named = set()
        for msg in messages:
            if is_marker(msg.headers):
                continue
            try:
                provider = json.loads(msg.data).get("provider")
            except (ValueError, AttributeError):
                continue  # not a function this gateway wrote
            if isinstance(provider, dict) and isinstance(provider.get("bundle"), str):
                named.add(provider["bundle"])
        return named

    async def _sweep_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)  # a schedule, not a poll
            try:
                removed = await self.collect_garbage()
            except StoreError:
                logger.exception("bundle garbage collection failed; will try again")
                continue
            if removed:
                logger.info(
                    "Deleted %d bundle(s) no function names from %s", len(removed), self.bucket
                )


def _stored_at(mtime: Any) -> float:
    """When the object was stored (its ``mtime``); unknown counts as now, so it is kept."""
    try:
        return datetime.fromisoformat(mtime).timestamp()
    except (TypeError, ValueError):
        return float("inf")


async def _next(watcher: ObjectStore.ObjectWatcher, timeout_s: float) -> Any:
    """The watch's next object, or ``None`` once it has delivered what the bucket held."""
    return await watcher.updates(timeout=timeout_s)  # type: ignore[no-untyped-call]  # nats-py: unannotated
