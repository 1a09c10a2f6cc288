"""The local runtime as one unit the app composes: bundles, workers, logs, providers.

Functions of type ``python``/``nodejs`` run here; ``eg serve`` keeps their code under
``<data-dir>/bundles`` and their logs in ``<data-dir>/logs.db``. With the ``memory://``
store nothing is kept: bundles go to a temporary directory removed at close.
"""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import tempfile

from eventgateway.model.entities import Function
from eventgateway.model.runtime_provider import RUNTIME_TYPES
from eventgateway.providers.base import Provider
from eventgateway.providers.runtime import RuntimeProvider
from eventgateway.runtime.base import LogStore
from eventgateway.runtime.bundles import BundleStore
from eventgateway.runtime.logs import MemoryLogStore
from eventgateway.runtime.logs_sqlite import SqliteLogStore
from eventgateway.runtime.pool import FunctionRuntime

__all__ = ["LocalRuntime"]


class LocalRuntime:
    """Owns the bundle store, the log store and the worker pools of one gateway."""

    def __init__(
        self,
        data_dir: pathlib.Path | None,
        *,
        logs: LogStore | None = None,
        bundles: BundleStore | None = None,
    ) -> None:
        self._temporary: pathlib.Path | None = None
        self.logs: LogStore
        if logs is not None and bundles is not None:  # cluster mode: shared on NATS
            self.bundles = bundles
            self.logs = logs
        elif data_dir is None:
            self._temporary = pathlib.Path(tempfile.mkdtemp(prefix="eg-bundles-"))
            self.bundles = BundleStore(self._temporary)
            self.logs = MemoryLogStore()
        else:
            self.bundles = BundleStore(data_dir / "bundles")
            self.logs = SqliteLogStore(data_dir / "logs.db")
        self.functions = FunctionRuntime(self.logs)
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
