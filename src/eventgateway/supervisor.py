"""Supervises the delivery worker process of ``eg serve --dispatch process``.

The worker is restarted with a growing delay (0.5 s, doubling up to 30 s) when it exits
unexpectedly — back to 0.5 s once a worker ran for a minute, so one crash after a long
healthy run is not made to wait the longest delay. A restart that cannot start the process
(out of memory, too many open files) is logged and tried again the same way. Calls the
worker had in flight fail and are retried by the gateway, so nothing is lost. On
shutdown — after the gateway's in-flight deliveries finished — it gets SIGTERM and, past
the timeout, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence

from eventgateway.dispatch.restarting import Backoff
from eventgateway.providers.targets import TargetPolicy

__all__ = ["WorkerProcess"]

logger = logging.getLogger(__name__)

_FIRST_RESTART_DELAY_S = 0.5
_MAX_RESTART_DELAY_S = 30.0
# A worker that ran this long was healthy: if it dies now, the cause is new, and its
# restart starts from the first delay again.
_HEALTHY_RUN_S = 60.0


class WorkerProcess:
    """One supervised ``python -m eventgateway.call_worker`` child.

    ``backoff``, ``healthy_s`` and ``clock`` (monotonic seconds) set the restart delays
    (see the module); tests pass short ones.
    """

    def __init__(
        self,
        socket_path: pathlib.Path,
        *,
        log_level: str = "info",
        targets: TargetPolicy,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        healthy_s: float = _HEALTHY_RUN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket_path = socket_path
        self._backoff = backoff or Backoff(_FIRST_RESTART_DELAY_S, _MAX_RESTART_DELAY_S)
        self._healthy_s = healthy_s
        self._clock = clock
        self._started_at = 0.0
        self._extra_args = list(extra_args)
        self._extra_env = dict(extra_env or {})
        self._log_level = log_level
        self._targets = targets
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._expected = False  # expect_exit(): the gateway began to stop
        self.restarts = 0
        # File descriptors every child inherits: the data dir's lock, so that a worker
        # outliving its gateway (kill -9) keeps the data dir from a second gateway.
        self.pass_fds: tuple[int, ...] = ()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the worker process runs now (not yet started, or dead and not restarted)."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start the child and keep it running until :meth:`stop`."""
        await self._spawn()
        self._task = asyncio.create_task(self._supervise(), name="worker-supervisor")

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "eventgateway.call_worker",  # not the eg CLI: a lean process (see call_worker.py)
            "--socket",
            str(self._socket_path),
            "--log-level",
            self._log_level,
            *_target_args(self._targets),
            *self._extra_args,
        ]

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._command(),
            env={**os.environ, **self._extra_env},
            stdin=asyncio.subprocess.DEVNULL,
            pass_fds=self.pass_fds,
        )
        self._started_at = self._clock()
        logger.info("delivery worker started (pid %d)", self._proc.pid)

    async def _supervise(self) -> None:
        while True:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            if self._expected:
                # A SIGTERM to the whole process group (systemd's default KillMode, a
                # `kill -- -PGID`) reaches the worker too: it drained and ended on its own.
                logger.info(
                    "delivery worker %d exited with %s while the gateway stops",
                    self._proc.pid,
                    code,
                )
                return
            if self._clock() - self._started_at >= self._healthy_s:
                self._backoff.reset()
            delay_s = self._backoff.next_s()
            logger.error(
                "delivery worker %d exited with %s; restarting in %.1f s",
                self._proc.pid,
                code,
                delay_s,
            )
            await self._restart(delay_s)

    async def _restart(self, delay_s: float) -> None:
        # Until a worker runs again: a failed spawn must not end supervision, or the
        # gateway would keep accepting with nothing delivering.
        while True:
            await asyncio.sleep(delay_s)  # back-off before a restart, not a poll
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception:
                delay_s = self._backoff.next_s()
                logger.exception(
                    "cannot start the delivery worker; trying again in %.1f s", delay_s
                )
            else:
                self.restarts += 1
                return

    def expect_exit(self) -> None:
        """The gateway is stopping: if the worker ends now, it is not restarted."""
        self._expected = True

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM the child, wait up to ``timeout_s``, then SIGKILL it."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                logger.warning("delivery worker %d did not stop; killing it", proc.pid)
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _target_args(policy: TargetPolicy) -> list[str]:
    # The worker makes the calls, so the SSRF guard must be the gateway's, stated in full.
    args = ["--allow-private-targets" if policy.allow_private else "--deny-private-targets"]
    for network in policy.allow_list:
        args += ["--allow-target", str(network)]
    return args
