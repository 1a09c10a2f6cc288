"""``NatsBundleStore``: code bundles shared by instances through a JetStream Object Store.

Every upload is kept twice: extracted under this instance's data directory (by the
:class:`~eventgateway.runtime.bundles.BundleStore` this class extends) and, as the zip,
in the object store ``<prefix>-bundles`` under its SHA-256. An instance that lacks a
bundle fetches the zip in :meth:`NatsBundleStore.ensure` (the runtime provider calls it
before each invocation), checks its hash, and extracts and installs it like an upload.

:meth:`exists` must answer without I/O (a function is validated at registration), so the
store watches the bucket's metadata and knows every bundle any instance stored.

nats errors are translated into :class:`~eventgateway.errors.StoreError` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import StorageType
from nats.js.object_store import ObjectStore

from eventgateway.errors import StoreError
from eventgateway.runtime.base import BundleInfo
from eventgateway.runtime.bundles import BundleStore, is_bundle_id
from eventgateway.store._nats_keys import valid_prefix

__all__ = ["DEFAULT_PREFIX", "NatsBundleStore"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "eventgateway"


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
        **options: Any,
    ) -> None:
        if not valid_prefix(prefix):
            raise ValueError(f"prefix {prefix!r}: use 1 to 64 of A-Z, a-z, 0-9, '-' and '_'")
        super().__init__(root, **options)
        self.bucket = f"{prefix}-bundles"
        self._js = nc.jetstream()
        self._transfer_timeout_s = transfer_timeout_s
        self._replicas = replicas
        self._objects: ObjectStore | None = None
        self._stored: set[str] = set()  # bundle ids in the bucket, from its watch
        self._learned = asyncio.Condition()  # notified when the watch adds one
        self._watch: asyncio.Task[None] | None = None
        self._fetching: dict[str, asyncio.Task[BundleInfo | None]] = {}

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
                watcher = await self._objects.watch(ignore_deletes=True)
                while (info := await _next(watcher, self._transfer_timeout_s)) is not None:
                    self._stored.add(info.name)
        self._watch = asyncio.create_task(self._follow(watcher), name=f"{self.bucket}-watch")

    async def close(self) -> None:
        """Stop watching the bucket."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def _follow(self, watcher: ObjectStore.ObjectWatcher) -> None:
        try:
            async for info in watcher:
                if info is not None and not info.deleted:
                    self._stored.add(info.name)
                    async with self._learned:
                        self._learned.notify_all()
        finally:
            with contextlib.suppress(nats.errors.Error):
                await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: unannotated

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


async def _next(watcher: ObjectStore.ObjectWatcher, timeout_s: float) -> Any:
    """The watch's next object, or ``None`` once it has delivered what the bucket held."""
    return await watcher.updates(timeout=timeout_s)  # type: ignore[no-untyped-call]  # nats-py: unannotated
