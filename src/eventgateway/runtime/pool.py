"""The local function runtime: warm worker processes per function version, Lambda-style logs.

:class:`FunctionRuntime` is what providers call. For each function version (a
:class:`~eventgateway.runtime.base.RuntimeSpec`: code bundle, handler, memory, environment…)
it keeps a pool of warm workers (``worker_process.py``), at most ``spec.concurrency`` of them
busy at once; further invocations wait for a free one. A pool nobody used for ``idle_s`` is
reaped by its own timer. A function invoked with a different spec (a redeploy: new bundle,
or changed memory or environment) gets a new pool at once; invocations already running finish
on the old one, which is then stopped.

Each invocation's log goes to the sink framed as Lambda frames it: ``START``, every line the
handler printed (and, on a cold start, what loading it printed), ``END``, ``REPORT``
(``report.py``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Final

from eventgateway.errors import ProviderError
from eventgateway.runtime.base import InvokeResult, LogLine, LogSink, RuntimeSpec
from eventgateway.runtime.launch import Launch, plan_launch
from eventgateway.runtime.report import billed_ms, end_line, error_payload, report_line, start_line
from eventgateway.runtime.warm_pool import WarmPool
from eventgateway.runtime.worker_process import Outcome, Ready, WorkerProcess

__all__ = ["DEFAULT_IDLE_S", "FunctionRuntime"]

logger = logging.getLogger(__name__)

DEFAULT_IDLE_S: Final = 300.0


class _Default(enum.Enum):
    FIND_NODE = enum.auto()  # look `node` up on PATH when the runtime is built


_FIND_NODE: Final = _Default.FIND_NODE


class FunctionRuntime:
    """Runs ``python`` and ``nodejs`` handlers in warm local worker processes.

    Args:
        sink: receives every log line (START, output, END, REPORT); must not block.
        idle_s: a function version's workers are stopped after this long without use.
        node: the ``node`` executable; by default found on ``PATH``. ``None``: no Node.js.
        python: the interpreter for Python workers.
        clock: wall-clock seconds for log line timestamps.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        sink: LogSink,
        *,
        idle_s: float = DEFAULT_IDLE_S,
        node: str | _Default | None = _FIND_NODE,
        python: str = sys.executable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._idle_s = idle_s
        self._node = shutil.which("node") if node is _FIND_NODE else node
        self._python = python
        self._clock = clock
        self._current: dict[tuple[str, str], WarmPool] = {}  # (space, function_id) → pool
        self._pools: set[WarmPool] = set()  # current and draining ones
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def node_available(self) -> bool:
        """Whether Node.js functions can run here."""
        return self._node is not None

    async def invoke(
        self, spec: RuntimeSpec, event: bytes, *, slot_wait_s: float | None = None
    ) -> InvokeResult:
        """Run ``spec``'s handler once with ``event`` (JSON; the handler gets it decoded).

        Waits for a free slot when ``spec.concurrency`` invocations are running, at most
        ``slot_wait_s`` when given (a caller is waiting: a sync route); the timeout
        (``spec.timeout_s``) counts from when the handler is called. A failing,
        crashing, hanging or memory-hogging handler gives a result with ``ok=False`` and
        Lambda's error shape as the payload; its worker is replaced.

        Raises:
            ProviderError: the runtime is closed (``retryable``: another gateway may run it),
                or no slot came free within ``slot_wait_s``.
        """
        self._check_open()
        pool = self._pool_for(spec)
        async with pool.slot(slot_wait_s):
            self._check_open()
            if pool.ended:  # waited for a slot while its space was deleted
                raise ProviderError(f'space "{spec.space}" was deleted', retryable=False)
            return await self._run(pool, spec, str(uuid.uuid4()), event)

    async def end_space(self, space: str) -> None:
        """Stop the functions of ``space`` (it is being deleted): running invocations are
        killed and fail, waiting ones fail, workers go. Returns once none of them runs, so
        that nothing more is logged under the space's name."""
        pools = [pool for pool in self._pools if pool.spec.space == space]
        for pool in pools:
            key = (space, pool.spec.function_id)
            if self._current.get(key) is pool:
                del self._current[key]  # a later function of that name gets a new pool
            pool.ended = True
            pool.retire()
            for worker in list(pool.workers):
                worker.kill()
        for pool in pools:
            await pool.quiet.wait()

    async def close(self) -> None:
        """Stop every worker: SIGTERM, then SIGKILL after 2 s. Running invocations fail."""
        self._closed = True
        for pool in list(self._pools):
            pool.retired = True
            self._stop_pool(pool)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- one invocation ----------------------------------------------------------------------

    async def _run(
        self, pool: WarmPool, spec: RuntimeSpec, request_id: str, event: bytes
    ) -> InvokeResult:
        worker = self._take_idle(pool)
        self._system(spec, request_id, [start_line(request_id)])
        init_duration_ms: float | None = None
        outcome: Outcome | None = None
        started = time.perf_counter()
        try:
            if worker is None:
                worker, init_duration_ms, outcome = await self._start(pool, spec, request_id)
            if outcome is None:
                assert worker is not None
                outcome = await worker.invoke(request_id, event, spec.timeout_s)
        except BaseException:
            # Cancelled mid-call (the caller gave up): the worker's state is unknown, so it
            # is not reused; the log still gets its END and REPORT.
            if worker is not None:
                worker.kill()
                self._discard(pool, worker)
            elapsed_ms = (time.perf_counter() - started) * 1000
            cancelled = Outcome(False, b"", elapsed_ms, 0, reusable=False)
            self._finish(spec, request_id, cancelled, init_duration_ms)
            raise
        if worker is not None:
            if outcome.reusable and worker.alive and not pool.retired:
                pool.give_back(worker)
            else:
                self._discard(pool, worker)
        return self._finish(spec, request_id, outcome, init_duration_ms)

    def _finish(
        self, spec: RuntimeSpec, request_id: str, outcome: Outcome, init_duration_ms: float | None
    ) -> InvokeResult:
        """Log END and REPORT; the result with the same figures."""
        report = report_line(
            request_id,
            duration_ms=outcome.duration_ms,
            memory_mb=spec.memory_mb,
            max_memory_used_mb=outcome.max_memory_used_mb,
            init_duration_ms=init_duration_ms,
        )
        self._system(spec, request_id, [end_line(request_id), report])
        return InvokeResult(
            ok=outcome.ok,
            payload=outcome.payload,
            request_id=request_id,
            duration_ms=outcome.duration_ms,
            billed_ms=billed_ms(outcome.duration_ms),
            memory_mb=spec.memory_mb,
            max_memory_used_mb=outcome.max_memory_used_mb,
            init_duration_ms=init_duration_ms,
        )

    async def _start(
        self, pool: WarmPool, spec: RuntimeSpec, request_id: str
    ) -> tuple[WorkerProcess | None, float, Outcome | None]:
        """A cold start: ``(worker, init duration, outcome if it failed to start)``."""
        started = time.perf_counter()

        def plan(fds: tuple[int, int], sentinel: str) -> Launch:
            return plan_launch(
                spec, python=self._python, node=self._node, fds=fds, sentinel=sentinel
            )

        try:
            worker = await WorkerProcess.spawn(spec, plan, self._sink, self._clock, request_id)
        except (OSError, ValueError) as exc:  # ValueError: an env value exec cannot pass
            logger.warning("cannot start a worker for %s/%s: %s", spec.space, spec.function_id, exc)
            message = f"Cannot start the {spec.language} worker: {exc}"
            self._system(spec, request_id, [message])
            failed = Outcome(False, error_payload("Runtime.StartError", message), 0.0, 0, False)
            return None, (time.perf_counter() - started) * 1000, failed
        pool.workers.add(worker)
        if self._closed or pool.ended:
            # close() or end_space() ran while it was being spawned, so they could not see it.
            worker.kill()
        try:
            ready = await worker.ready(started)
        except BaseException:  # cancelled while it loads: it never served, so it goes
            worker.kill()
            self._discard(pool, worker)
            raise
        if isinstance(ready, Ready):
            return worker, ready.init_duration_ms, None
        return worker, (time.perf_counter() - started) * 1000, ready

    def retire_stale(self, current: Callable[[RuntimeSpec], bool]) -> None:
        """Retire the pools whose spec is not ``current`` any more (a function removed, or
        redeployed): their warm workers stop once idle, not ``idle_s`` later or at the
        function's next call; running invocations finish on them."""
        for key, pool in list(self._current.items()):
            if not current(pool.spec):
                del self._current[key]  # a function of that name made again gets a new pool
                pool.retire()

    # -- pools -------------------------------------------------------------------------------

    def _pool_for(self, spec: RuntimeSpec) -> WarmPool:
        key = (spec.space, spec.function_id)
        pool = self._current.get(key)
        if pool is not None and pool.spec != spec:
            # A redeploy (or changed memory, environment…): new invocations use new workers
            # from now on; the running ones finish on the old pool, which then stops.
            logger.info(
                "function %s/%s changed (bundle %s → %s): swapping its workers",
                spec.space,
                spec.function_id,
                pool.spec.bundle_id[:12],
                spec.bundle_id[:12],
            )
            del self._current[key]
            pool.retire()
            pool = None
        if pool is None:
            pool = WarmPool(spec, self._stop_pool, self._idle_s)
            self._current[key] = pool
            self._pools.add(pool)
        return pool

    def _stop_pool(self, pool: WarmPool) -> None:
        """Idle timer fired, or a retired pool ran dry: stop its workers, forget the pool."""
        if pool.busy and not self._closed:
            return
        key = (pool.spec.space, pool.spec.function_id)
        if self._current.get(key) is pool:
            del self._current[key]
        self._pools.discard(pool)
        for worker in pool.drain():
            self._background(worker.stop())

    def _take_idle(self, pool: WarmPool) -> WorkerProcess | None:
        while (worker := pool.pop_idle()) is not None:
            if worker.alive:
                return worker
            self._discard(pool, worker)  # died while idle (killed from outside)
        return None

    def _discard(self, pool: WarmPool, worker: WorkerProcess) -> None:
        pool.workers.discard(worker)
        self._background(worker.stop())

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # Owned here and awaited by close(): no task outlives the runtime.
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- helpers -----------------------------------------------------------------------------

    def _system(self, spec: RuntimeSpec, request_id: str, messages: list[str]) -> None:
        now = self._clock()
        self._sink.append(
            [
                LogLine(spec.space, spec.function_id, request_id, now, "system", message)
                for message in messages
            ]
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("the local function runtime is shut down", retryable=True)
