"""The warm workers of one function version, and the slots that bound its concurrency.

:class:`~eventgateway.runtime.pool.FunctionRuntime` keeps one :class:`WarmPool` per function
version: at most ``spec.concurrency`` invocations hold a slot at once; the others wait for
one (bounded when a caller waits for the result). A pool nobody used for ``idle_s`` is
reaped by its own timer; a retired one (a redeploy, a removed function) goes once idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from eventgateway.errors import ProviderError
from eventgateway.runtime.base import CALLER_GONE, RuntimeSpec
from eventgateway.runtime.worker_process import WorkerProcess

__all__ = ["WarmPool"]


class WarmPool:
    """The warm workers of one function version, and the slots that bound its concurrency."""

    def __init__(
        self, spec: RuntimeSpec, on_idle: Callable[[WarmPool], None], idle_s: float
    ) -> None:
        self.spec = spec
        self.workers: set[WorkerProcess] = set()  # idle and busy
        self.retired = False
        self._idle: list[WorkerProcess] = []
        self._slots = asyncio.Semaphore(max(1, spec.concurrency))
        self._active = 0
        self._on_idle = on_idle
        self._idle_s = idle_s
        self._timer: asyncio.TimerHandle | None = None
        self.ended = False  # its space was deleted: nothing more may run here
        self.quiet = asyncio.Event()  # set while no invocation holds a slot
        self.quiet.set()

    @contextlib.asynccontextmanager
    async def slot(self, wait_s: float | None = None) -> AsyncIterator[None]:
        """Hold one of the pool's ``concurrency`` slots, waiting for one at most ``wait_s``
        (``None``: as long as it takes).

        Raises:
            ProviderError: no slot came free within ``wait_s`` (retryable).
        """
        gone = CALLER_GONE.get()
        if gone is not None and self._slots.locked():
            await self._acquire_unless(gone, wait_s)
        elif wait_s is None:
            await self._slots.acquire()
        else:
            try:
                async with asyncio.timeout(wait_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise self._busy(wait_s) from None
        self._active += 1
        self.quiet.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            yield
        finally:
            self._active -= 1
            self._slots.release()
            if self._active == 0:
                self.quiet.set()
                self._settle()

    async def _acquire_unless(self, gone: asyncio.Event, wait_s: float | None) -> None:
        # A slot, unless the caller goes away (or wait_s passes) first: then nothing runs.
        acquiring = asyncio.ensure_future(self._slots.acquire())
        leaving = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait(
                (acquiring, leaving), timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            leaving.cancel()
            if not acquiring.done():
                acquiring.cancel()
            await asyncio.gather(acquiring, leaving, return_exceptions=True)
        if acquiring.cancelled():
            if gone.is_set():
                raise ProviderError(
                    f"function {self.spec.function_id!r}: the caller went away while the call "
                    "waited for a free worker; it was not run",
                    retryable=False,
                )
            raise self._busy(wait_s)

    def _busy(self, wait_s: float | None) -> ProviderError:
        return ProviderError(
            f"function {self.spec.function_id!r} is busy: its {self.spec.concurrency} "
            f"worker(s) (its concurrency) stayed busy for {wait_s:g} s"
        )

    def pop_idle(self) -> WorkerProcess | None:
        """A warm worker, most recently used first (its caches are the warmest)."""
        return self._idle.pop() if self._idle else None

    def give_back(self, worker: WorkerProcess) -> None:
        self._idle.append(worker)

    def retire(self) -> None:
        """No new invocations; stop the workers once the running ones are done."""
        self.retired = True
        if self._active == 0:
            self._settle()

    def drain(self) -> list[WorkerProcess]:
        """Forget every worker and return them for stopping."""
        workers = list(self.workers)
        self.workers.clear()
        self._idle.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return workers

    def _settle(self) -> None:
        # Nothing runs: a retired pool goes now, a current one after idle_s without use.
        if self.retired:
            self._on_idle(self)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._idle_s, self._on_idle, self)

    @property
    def busy(self) -> bool:
        return self._active > 0
