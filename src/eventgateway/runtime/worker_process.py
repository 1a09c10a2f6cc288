"""One worker process seen from the gateway: spawn, wait until ready, invoke, stop.

A :class:`WorkerProcess` owns the child, its request and result pipes (``protocol.py``) and
the two :class:`~eventgateway.runtime.output.OutputPump` s that turn its stdout and stderr
into log lines stamped with the request id of the invocation in progress. It runs one
invocation at a time; the pool (``pool.py``) guarantees that.

Every way a worker can fail ends in an :class:`Outcome`, never in an exception: a timeout
kills the process group (the handler's children too), a crash or a memory hog is reported
in Lambda's words, and the outcome says the worker must not be reused.

Max Memory Used is the highest figure known for the worker: its own report after each
answer (``VmHWM``), ``VmHWM`` read just before a kill, and, once it is dead, the kernel's
peak for it (``child.py``), which alone survives a worker that died on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from eventgateway.runtime.base import LogLine, LogSink, RuntimeSpec, Stream
from eventgateway.runtime.child import Child
from eventgateway.runtime.launch import Launch
from eventgateway.runtime.output import OutputPump
from eventgateway.runtime.protocol import (
    Frame,
    ProtocolError,
    encode_frame,
    memory_figure,
    read_frame,
    result_of,
)
from eventgateway.runtime.report import error_payload, exit_description, timeout_message

__all__ = ["INIT_TIMEOUT_S", "Outcome", "Ready", "WorkerProcess"]

logger = logging.getLogger(__name__)

# Lambda gives the init phase (interpreter start + handler module import) its own 10 s.
INIT_TIMEOUT_S: Final = 10.0
# After the result frame, the output before the sentinels is already in the pipes; after a
# kill, a grandchild that escaped the process group may hold them open. Either way: bounded.
OUTPUT_GRACE_S: Final = 1.0
STOP_GRACE_S: Final = 2.0
# After a worker died, how long a result frame it wrote may take to be read.
_DEATH_GRACE_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class Ready:
    """A started worker, and how long init took.

    A worker whose handler failed to load is ready too: it answers its first invocation
    with the error (so that what loading printed is framed like any output) and retires.
    """

    init_duration_ms: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """One invocation as the worker (or its death) reported it."""

    ok: bool
    payload: bytes
    duration_ms: float
    max_memory_used_mb: int
    reusable: bool


@dataclass(frozen=True, slots=True)
class _Pipes:
    requests: asyncio.StreamWriter  # parent → worker
    results: asyncio.StreamReader  # worker → parent
    results_transport: asyncio.ReadTransport


class WorkerProcess:
    """A running worker. Create with :meth:`spawn`; end with :meth:`stop`."""

    def __init__(
        self,
        spec: RuntimeSpec,
        process: Child,
        pipes: _Pipes,
        token: str,
        sink: LogSink,
        clock: Callable[[], float],
        request_id: str,
    ) -> None:
        self.spec = spec
        self.request_id = request_id  # whose invocation the output belongs to right now
        self._process = process
        self._requests = pipes.requests
        self._results = pipes.results
        self._results_transport = pipes.results_transport
        self._clock = clock
        self._seq = 0
        self._max_memory_used_mb = 0
        self._broken = False
        self._pumps = [
            OutputPump(process.stdout, "stdout", sink, self._line, token),
            OutputPump(process.stderr, "stderr", sink, self._line, token),
        ]
        self._pump_tasks = [
            asyncio.create_task(pump.run(), name=f"worker-{process.pid}-{pump_name}")
            for pump, pump_name in zip(self._pumps, ("stdout", "stderr"), strict=True)
        ]
        self._exit_watch = asyncio.create_task(self._end_results_on_exit())
        self._sink = sink

    # -- life cycle --------------------------------------------------------------------------

    @classmethod
    async def spawn(
        cls,
        spec: RuntimeSpec,
        plan: Callable[[tuple[int, int], str], Launch],
        sink: LogSink,
        clock: Callable[[], float],
        request_id: str,
    ) -> WorkerProcess:
        """Start a worker; ``plan(fds, sentinel)`` says how. Output is captured from now on.

        Raises:
            OSError: the process could not be started (missing executable, fork failure).
        """
        loop = asyncio.get_running_loop()
        token = "\x1eeg-" + secrets.token_hex(8)
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            launch = plan((request_read, result_write), token)
            # In its own session, so its own process group: a kill takes its children too.
            process = await Child.start(
                launch.argv, env=launch.env, cwd=launch.cwd, pass_fds=(request_read, result_write)
            )
        except BaseException:
            for fd in (request_write, result_read):
                os.close(fd)
            raise
        finally:
            # The child has its copies; ours must go, or we never see the child's EOF.
            os.close(request_read)
            os.close(result_write)
        try:
            results = asyncio.StreamReader()
            results_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(results), os.fdopen(result_read, "rb", 0)
            )
            transport, protocol = await loop.connect_write_pipe(
                lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
                os.fdopen(request_write, "wb", 0),
            )
        except BaseException:
            _kill_group(process)
            raise
        pipes = _Pipes(
            asyncio.StreamWriter(transport, protocol, None, loop), results, results_transport
        )
        return cls(spec, process, pipes, token, sink, clock, request_id)

    async def ready(self, started: float) -> Ready | Outcome:
        """Wait for the worker's ``ready`` frame; ``started`` is ``time.perf_counter()`` at spawn.

        Returns the worker's :class:`Ready`, or the :class:`Outcome` of a worker that died or
        hung while loading (it is killed then).
        """
        try:
            async with asyncio.timeout(INIT_TIMEOUT_S):
                frame = await read_frame(self._results)
        except TimeoutError:
            return await self._timed_out(INIT_TIMEOUT_S, started, init=True)
        except ProtocolError as exc:
            logger.warning("worker %d sent a bad ready frame: %s", self.pid, exc)
            frame = None
        if frame is None or frame.header.get("type") != "ready":
            return await self._died(started)
        try:
            self._max_memory_used_mb = memory_figure(frame.header)
        except ProtocolError as exc:
            return await self._misbehaved(exc, started)
        return Ready(init_duration_ms=(time.perf_counter() - started) * 1000)

    @property
    def pid(self) -> int:
        """The worker's process id (also its process group id)."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """Whether the worker can take another invocation."""
        # The result pipe's EOF often arrives before the child watcher's return code.
        return not self._broken and self._process.returncode is None and not self._results.at_eof()

    def kill(self) -> None:
        """SIGKILL the worker's process group now."""
        self._broken = True
        _kill_group(self._process)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_s``, release the pipes."""
        self._broken = True
        self._requests.close()  # EOF on the request pipe: a worker between calls just exits
        if self._process.returncode is None:
            _signal_group(self._process, signal.SIGTERM)
            if not await self._exited_within(grace_s):
                logger.warning(
                    "worker %d ignored SIGTERM for %.1f s; killing it", self.pid, grace_s
                )
                _kill_group(self._process)
                await self._exited_within(grace_s)
        await self._finish_output()
        # A grandchild that left the process group may still hold stdout/stderr open; our
        # ends of those pipes go now rather than whenever it exits.
        self._process.close()

    async def _exited_within(self, seconds: float) -> bool:
        # Bounded: a worker may ignore SIGTERM, and one stuck in the kernel outlasts even
        # SIGKILL for a while. "Exited" means reaped (returncode set), pipes aside.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._process.wait()
        return self._process.returncode is not None

    # -- invocations -------------------------------------------------------------------------

    async def invoke(self, request_id: str, event: bytes, timeout_s: float) -> Outcome:
        """Run one invocation; its deadline is ``timeout_s`` from sending the request."""
        self._seq += 1
        self.request_id = request_id
        for pump in self._pumps:
            pump.oom_hint = False
        header = {
            "type": "invoke",
            "seq": self._seq,
            "request_id": request_id,
            "timeout_ms": int(timeout_s * 1000),
        }
        started = time.perf_counter()
        frame: Frame | None = None
        try:
            async with asyncio.timeout(timeout_s):
                self._requests.write(encode_frame(header, event))
                await self._requests.drain()
                frame = await read_frame(self._results)
        except TimeoutError:
            return await self._timed_out(timeout_s, started)
        except (ConnectionError, ProtocolError) as exc:
            logger.debug("worker %d: %r", self.pid, exc)
        if frame is None or frame.header.get("seq") != self._seq:
            return await self._died(started)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OUTPUT_GRACE_S):
                for pump in self._pumps:
                    await pump.wait_for(self._seq)
        try:
            result = result_of(frame.header)
        except ProtocolError as exc:
            return await self._misbehaved(exc, started)
        self._max_memory_used_mb = result.max_memory_used_mb
        if result.retire:
            self._broken = True
        return Outcome(
            ok=result.ok,
            payload=frame.body,
            duration_ms=result.duration_ms,
            max_memory_used_mb=self._max_memory_used_mb,
            reusable=not result.retire,
        )

    async def _timed_out(self, timeout_s: float, started: float, *, init: bool = False) -> Outcome:
        # Read before the kill: /proc forgets the dead (the kernel's figure may not tell).
        self._max_memory_used_mb = max(self._max_memory_used_mb, self._peak_rss_mb())
        self.kill()
        duration_ms = (time.perf_counter() - started) * 1000
        await self._exited_within(STOP_GRACE_S)
        await self._finish_output()
        message = timeout_message(timeout_s)
        if init:
            message = f"Init phase: {message}"
        # Lambda prints this line with a timestamp and request id, like the handler's own.
        self._emit("stderr", [message])
        return Outcome(
            ok=False,
            payload=error_payload("Sandbox.Timedout", message),
            duration_ms=duration_ms,
            max_memory_used_mb=self._dead_peak_mb(),
            reusable=False,
        )

    async def _misbehaved(self, error: ProtocolError, started: float) -> Outcome:
        # A malformed frame (forged by the handler, or a corrupted worker): nothing it says
        # can be trusted any more, so it goes now, and the call fails as a crash would.
        logger.warning("worker %d broke the protocol: %s", self.pid, error)
        self.kill()
        return await self._died(started)

    async def _died(self, started: float) -> Outcome:
        self._broken = True
        if not await self._exited_within(STOP_GRACE_S):  # alive but talking nonsense
            _kill_group(self._process)
            await self._exited_within(STOP_GRACE_S)
        duration_ms = (time.perf_counter() - started) * 1000
        await self._finish_output()
        description = exit_description(self._process.returncode)
        oom = any(pump.oom_hint for pump in self._pumps)
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        message = f"RequestId: {self.request_id} Error: Runtime exited with error: {description}"
        self._emit("system", [message, error_type])
        return Outcome(
            ok=False,
            payload=error_payload(error_type, message),
            duration_ms=duration_ms,
            max_memory_used_mb=self._dead_peak_mb(),
            reusable=False,
        )

    # -- output ------------------------------------------------------------------------------

    def _line(self, stream: Stream, text: str) -> LogLine:
        return LogLine(
            space=self.spec.space,
            function_id=self.spec.function_id,
            request_id=self.request_id,
            timestamp=self._clock(),
            stream=stream,
            message=text,
        )

    def _emit(self, stream: Stream, texts: list[str]) -> None:
        self._sink.append([self._line(stream, text) for text in texts])

    async def _end_results_on_exit(self) -> None:
        # The pipe alone does not tell a death: a process that left the worker's group (a
        # setsid or detached child) may hold a copy of it open. So the exit ends the read
        # of results, once a frame written just before it has had time to arrive. One task
        # per worker, not per call: a warm invocation pays nothing for it.
        await self._process.wait()
        await asyncio.sleep(_DEATH_GRACE_S)
        self._results_transport.close()  # the reader then sees EOF

    async def _finish_output(self) -> None:
        """Let the pumps read to EOF (bounded), then cancel what is left and close the pipes."""
        self._exit_watch.cancel()
        _done, pending = await asyncio.wait(self._pump_tasks, timeout=OUTPUT_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self._requests.close()
        self._results_transport.close()

    def _peak_rss_mb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
                for row in status:
                    if row.startswith("VmHWM:"):
                        return int(row.split()[1]) // 1024
        except (OSError, ValueError, IndexError):
            pass
        return self._max_memory_used_mb

    def _dead_peak_mb(self) -> int:
        # The kernel's figure covers what happened after the worker's last report: a
        # handler that allocated, then crashed or was killed. Unknown (None) while the
        # worker is unreaped, or when it may be the gateway's own (child.py).
        kernel_kib = self._process.peak_rss_kib
        if kernel_kib is None:
            return self._max_memory_used_mb
        return max(self._max_memory_used_mb, kernel_kib // 1024)


def _signal_group(process: Child, signum: int) -> None:
    # Only while the leader is unreaped: its pid, and so the group id, cannot be reused yet.
    if process.returncode is None:
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_group(process: Child) -> None:
    _signal_group(process, signal.SIGKILL)
