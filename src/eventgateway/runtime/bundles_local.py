"""``LocalBundleStore``: the bundle store of a single-node gateway, with garbage collection.

Nothing deletes an uploaded bundle by itself: a redeploy with new code leaves the old
bundle behind, and a client can upload bundle after bundle. So, every ``gc_interval_s``
(10 min), a sweep deletes the bundles no function of any space names (``provider.bundle``)
that nobody used for ``gc_grace_s`` (1 h): the semantics of the cluster store
(``bundles_nats.py``), on the local directory.

A bundle's last use is the modification time of its ``.eg-bundle.json``, in the store's
clock: set when the bundle is stored, and moved forward when a client uploads it again,
looks it up (``GET``/``HEAD …/bundles/{id}``) or registers a function naming it. It
survives restarts, and a client just told that the bundle exists (``eg deploy``) has the
whole grace period to write the function naming it.

A sweep lists the unused bundles, then reads which ones functions name (so a function
written meanwhile is seen), and deletes the others. Each is checked again and renamed away
on the event loop, with no await in between, so an upload, a function's validation
(:meth:`LocalBundleStore.exists`) or an invocation either marked it used first (it stays)
or finds it gone (the function is refused: "bundle not uploaded"). A bundle whose code may
still run (``in_use``: a function deleted or redeployed mid-invocation, or its workers
still warm) is kept until a later sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from eventgateway.runtime.base import BundleInfo
from eventgateway.runtime.bundle_archive import METADATA_NAME, remove
from eventgateway.runtime.bundles import BundleStore, is_bundle_id

__all__ = ["LocalBundleStore", "NamedBundles"]

logger = logging.getLogger(__name__)

NamedBundles = Callable[[], Awaitable[Collection[str]]]
"""Returns every bundle id a function of any space names."""


class LocalBundleStore(BundleStore):
    """Bundles under ``root``; the unused ones no function names are deleted.

    Args:
        root: the bundles directory, usually ``<data-dir>/bundles``.
        named: returns every bundle id a function of any space names (``provider.bundle``).
        in_use: whether a bundle's code may still be running; such a bundle is kept.
        gc_grace_s: how long a bundle no function names is kept after its last use.
        gc_interval_s: how often :meth:`collect_garbage` runs once opened (``None``: never).
        clock: wall-clock seconds, for the bundles' last use.
        options: the :class:`BundleStore` limits and installer commands.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        root: Path,
        *,
        named: NamedBundles,
        in_use: Callable[[str], bool] = lambda bundle_id: False,
        gc_grace_s: float = 3600.0,
        gc_interval_s: float | None = 600.0,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self._named = named
        self._in_use = in_use
        self._gc_grace_s = gc_grace_s
        self._gc_interval_s = gc_interval_s
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Start the sweep every ``gc_interval_s``."""
        await super().open()
        if self._gc_interval_s is not None:
            self._sweeper = asyncio.create_task(
                self._sweep_every(self._gc_interval_s), name="bundles-gc"
            )

    async def close(self) -> None:
        """Stop the sweep (a bundle it renamed away is left to :meth:`remove_stale`)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().close()

    async def add(self, zip_bytes: bytes) -> tuple[BundleInfo, bool]:
        """Store the zip, or find it, and count it as used now; see :meth:`BundleStore.add`."""
        info, created = await super().add(zip_bytes)
        # Found: no await since, so no sweep came between. Created: written just now.
        self.touch(info.bundle_id)
        return info, created

    def exists(self, bundle_id: str) -> bool:
        """Whether the bundle is stored; if so it counts as used now.

        A function is validated with it before it is written: the mark keeps a sweep that
        read the functions before that write from deleting the bundle.
        """
        found = super().exists(bundle_id)
        if found:
            self.touch(bundle_id)
        return found

    def touch(self, bundle_id: str) -> None:
        """Count the bundle as used now: unnamed, it is kept for another ``gc_grace_s``."""
        if not is_bundle_id(bundle_id):
            return
        now = self._clock()
        with contextlib.suppress(OSError):  # deleted meanwhile, or a read-only data dir
            os.utime(self.root / bundle_id / METADATA_NAME, (now, now))

    async def collect_garbage(self) -> list[str]:
        """Delete the bundles no function names that nobody used for ``gc_grace_s``.

        Returns the ids deleted by this call.

        Raises:
            StoreError: ``named`` could not read the functions (nothing is deleted).
        """
        cutoff = self._clock() - self._gc_grace_s
        old = await asyncio.to_thread(_unused, self.root, cutoff)
        if not old:
            return []
        # Read after the listing: a function written since names a bundle listed as old.
        named = await self._named()
        retired = []
        for bundle_id in old:
            if bundle_id in named or self._in_use(bundle_id):
                continue
            gone = _retire(self.root, bundle_id, cutoff)  # on the loop: see the module doc
            if gone is not None:
                self._known.pop(bundle_id, None)
                retired.append((bundle_id, gone))
        for _, gone in retired:
            await asyncio.to_thread(remove, gone)
        return [bundle_id for bundle_id, _ in retired]

    async def _sweep_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)  # a schedule, not a poll
            try:
                removed = await self.collect_garbage()
            except Exception:  # whatever failed, the next sweep must still run
                logger.exception("bundle garbage collection failed; will try again")
                continue
            if removed:
                logger.info(
                    "Deleted %d bundle(s) no function names from %s", len(removed), self.root
                )


def _last_used(bundle_dir: Path) -> float | None:
    try:
        return (bundle_dir / METADATA_NAME).stat().st_mtime
    except OSError:
        return None  # gone, or not a bundle this store wrote


def _unused(root: Path, cutoff_s: float) -> list[str]:
    """The ids of the bundles under ``root`` last used before ``cutoff_s``."""
    try:
        names = sorted(path.name for path in root.iterdir())
    except FileNotFoundError:
        return []  # nothing uploaded yet
    old = []
    for name in names:
        used = _last_used(root / name) if is_bundle_id(name) else None
        if used is not None and used < cutoff_s:
            old.append(name)
    return old


def _retire(root: Path, bundle_id: str, cutoff_s: float) -> Path | None:
    """Rename the bundle away if it is still unused; where it went, or ``None``.

    Renamed first and deleted after, as the cluster store does: nothing sees half a bundle,
    and a crash leaves a ``.tmp-*`` directory that ``remove_stale`` deletes at the next start.
    """
    used = _last_used(root / bundle_id)
    if used is None or used >= cutoff_s:
        return None
    gone = root / f".tmp-{bundle_id}-gone-{secrets.token_hex(4)}"
    try:
        (root / bundle_id).rename(gone)
    except FileNotFoundError:
        return None
    return gone
