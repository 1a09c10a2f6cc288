"""The local runtime as one unit the app composes: bundles, workers, logs, providers.

Functions of type ``python``/``nodejs`` run here; ``eg serve`` keeps their code under
``<data-dir>/bundles`` and their logs in ``<data-dir>/logs.db``. With the ``memory://``
store nothing is kept: bundles go to a temporary directory removed at close. Given which
bundles functions name (:func:`bundles_named_in`), the bundle store deletes the others
once unused (``bundles_local.py``), never one whose code may still run here.
"""

from __future__ import annotations

import asyncio
import collections
import json
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Final

from eventgateway.model.entities import Function
from eventgateway.model.runtime_provider import RUNTIME_TYPES
from eventgateway.providers.base import Provider
from eventgateway.providers.runtime import RuntimeProvider
from eventgateway.runtime.base import InvokeResult, LogSink, LogStore, RuntimeSpec
from eventgateway.runtime.bundles import BundleStore
from eventgateway.runtime.bundles_local import LocalBundleStore, NamedBundles
from eventgateway.runtime.logs import MemoryLogStore
from eventgateway.runtime.logs_sqlite import SqliteLogStore
from eventgateway.runtime.pool import DEFAULT_IDLE_S, FunctionRuntime
from eventgateway.store.base import ConfigStore

__all__ = ["BundleTrackingRuntime", "LocalRuntime", "bundles_named_in"]

# A worker told to stop is killed 2 s later; past idle_s and this, none runs an old bundle.
_STOP_MARGIN_S: Final = 10.0


def bundles_named_in(store: ConfigStore) -> NamedBundles:
    """A callable returning every bundle id a function of any space in ``store`` names."""

    async def named() -> set[str]:
        bundles = set()
        for value in await store.list_all("functions"):
            try:
                provider = json.loads(value).get("provider")
            except (ValueError, AttributeError):
                continue  # not a function this gateway wrote
            if isinstance(provider, dict) and isinstance(provider.get("bundle"), str):
                bundles.add(provider["bundle"])
        return bundles

    return named


class BundleTrackingRuntime(FunctionRuntime):
    """A :class:`FunctionRuntime` that knows which bundles its workers may still run."""

    def __init__(
        self,
        sink: LogSink,
        *,
        idle_s: float = DEFAULT_IDLE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sink, idle_s=idle_s)
        self._running: collections.Counter[str] = collections.Counter()
        self._last_run_s: dict[str, float] = {}
        self._warm_s = idle_s + _STOP_MARGIN_S
        self._monotonic = monotonic

    async def invoke(
        self, spec: RuntimeSpec, event: bytes, *, slot_wait_s: float | None = None
    ) -> InvokeResult:
        # Counted before the first await: the provider looked the bundle up just before.
        self._running[spec.bundle_id] += 1
        try:
            return await super().invoke(spec, event, slot_wait_s=slot_wait_s)
        finally:
            self._running[spec.bundle_id] -= 1
            if self._running[spec.bundle_id] <= 0:
                del self._running[spec.bundle_id]
            self._last_run_s[spec.bundle_id] = self._monotonic()

    def runs_bundle(self, bundle_id: str) -> bool:
        """Whether an invocation, or a warm worker, may be running the bundle's code."""
        if self._running[bundle_id] > 0:
            return True
        last = self._last_run_s.get(bundle_id)
        if last is None:
            return False
        if self._monotonic() - last < self._warm_s:
            return True
        del self._last_run_s[bundle_id]  # its workers are stopped by now
        return False


class LocalRuntime:
    """Owns the bundle store, the log store and the worker pools of one gateway.

    Args:
        data_dir: where bundles and logs are kept; ``None``: a temporary directory and
            memory.
        logs: the log store, with ``bundles``, of cluster mode (shared on NATS).
        bundles: the bundle store, with ``logs``, of cluster mode; it collects its own
            garbage.
        named_bundles: returns the bundle ids functions name; with it (and no ``bundles``)
            unused bundles nobody names are deleted.
    """

    def __init__(
        self,
        data_dir: pathlib.Path | None,
        *,
        logs: LogStore | None = None,
        bundles: BundleStore | None = None,
        named_bundles: NamedBundles | None = None,
    ) -> None:
        self._temporary: pathlib.Path | None = None
        self.logs: LogStore
        root: pathlib.Path | None = None
        if logs is not None and bundles is not None:  # cluster mode: shared on NATS
            self.logs = logs
        elif data_dir is None:
            self._temporary = pathlib.Path(tempfile.mkdtemp(prefix="eg-bundles-"))
            root = self._temporary
            self.logs = MemoryLogStore()
        else:
            root = data_dir / "bundles"
            self.logs = SqliteLogStore(data_dir / "logs.db")
        functions = BundleTrackingRuntime(self.logs)
        self.functions: FunctionRuntime = functions
        if root is None:
            assert bundles is not None
            self.bundles = bundles
        elif named_bundles is not None:
            self.bundles = LocalBundleStore(root, named=named_bundles, in_use=functions.runs_bundle)
        else:
            self.bundles = BundleStore(root)
        self._ending: set[asyncio.Task[None]] = set()
        self.providers: dict[str, Provider] = {
            language: RuntimeProvider(language, self.functions, self.bundles)
            for language in ("python", "nodejs")
        }

    def check_function(self, function: Function) -> None:
        """Refuse, at registration, a runtime function that could not run here."""
        if function.type in RUNTIME_TYPES:
            self.providers[function.type].validate(function)

    async def open(self) -> None:
        await self.logs.open()
        await self.bundles.open()
        await asyncio.to_thread(self.bundles.remove_stale)  # left by a crash mid-upload

    def space_ended(self, space: str) -> None:
        """A space was deleted, maybe through another instance sharing the store: end this
        process's tails of it and stop its running functions (their lines must not reach,
        nor follow, the name's next owner). The deleting instance has done so already."""
        self.logs.end_space_tails(space)
        task = asyncio.get_running_loop().create_task(self.functions.end_space(space))
        self._ending.add(task)  # held: the loop keeps only weak references to tasks
        task.add_done_callback(self._ending.discard)

    async def close(self) -> None:
        await self.functions.close()
        await self.logs.close()
        await self.bundles.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
